"""Walk sheet PDF rendering."""

from __future__ import annotations

import re

from geo.walksheet import OUTCOME_CODES, render_walk_sheet_pdf


def _rows(n: int) -> list[dict]:
    return [
        {
            "seq": i,
            "address": f"{i} Leighton Road, NW5",
            "people": [{"name": f"Elector Number{i}", "elector_number": f"KT-{i:04d}"}],
        }
        for i in range(1, n + 1)
    ]


def _pages(pdf: bytes) -> int:
    return len(re.findall(rb"/Type /Page\b(?!s)", pdf))


def test_pdf_renders_map_table_questions_and_qr() -> None:
    route = [(-0.14 + i * 1e-4, 51.55 + (i % 3) * 1e-4) for i in range(30)]
    pdf = render_walk_sheet_pdf(
        {
            "title": "Kentish Town 3",
            "list_id": "KT-3",
            "doors": 12,
            "length_m": 840.0,
            "minutes": 28.5,
        },
        _rows(12),
        ["Who will you vote for?", {"text": "Would you volunteer?", "options": ["Yes", "No"]}],
        route,
        route[::3],
        "https://canvass.example/lists/KT-3",
        compress=False,
    )
    assert pdf.startswith(b"%PDF")
    assert _pages(pdf) == 2  # map page + table page
    assert b"12 Leighton Road" in pdf and b"KT-0007" in pdf
    assert b"Would you volunteer?" in pdf
    for code, _ in OUTCOME_CODES:
        assert code.encode() in pdf


def test_long_lists_flow_over_several_pages() -> None:
    pdf = render_walk_sheet_pdf(
        {"list_id": 9}, _rows(120), [], [], [], "https://x.example/9", compress=False
    )
    assert _pages(pdf) >= 4
    assert b"120 Leighton Road" in pdf
    # compressed output is smaller and still a PDF
    small = render_walk_sheet_pdf({"list_id": 9}, _rows(120), [], [], [], "https://x.example/9")
    assert small.startswith(b"%PDF") and len(small) < len(pdf)


def pdf_text(pdf: bytes) -> bytes:
    """Every content stream of a PDF, decoded when compressed (ASCII85 then Flate, as reportlab writes them), to look for drawn text."""
    import base64
    import zlib

    out = [pdf]
    for stream in re.findall(rb"stream\r?\n(.*?)\r?\n?endstream", pdf, flags=re.S):
        data = stream.strip()
        try:
            out.append(zlib.decompress(base64.a85decode(data.removesuffix(b"~>")) if data.endswith(b"~>") else data))
        except (ValueError, zlib.error):
            pass
    return b"\n".join(out)


QUESTIONS = [
    {"key": "postal_vote", "text": "Would you like a postal vote?", "kind": "yes_no", "options": ["yes", "no"]},
    {"key": "support", "text": "How likely are you to vote for us?", "kind": "scale", "options": ["1", "2", "3", "4", "5"]},
    {"key": "issue", "text": "What matters most locally?", "kind": "choice", "options": ["Housing", "Transport", "Crime"]},
    {"key": "notes", "text": "Anything else they told you", "kind": "text"},
]


def _building_rows() -> list[dict]:
    """Stop 1 a house; stop 2 a block of 11 flats at 29 Leighton Road (in flat order); stop 3 a house that asked not to be visited."""
    rows = [{"stop": 1, "address": "27 Leighton Road", "people": [{"name": "Ann Able", "elector_number": "KT-1"}]}]
    for flat in range(1, 12):
        rows.append({"stop": 2, "address": f"Flat {flat}, 29 Leighton Road", "building": "29 Leighton Road", "flat": f"Flat {flat}",
                     "people": [{"name": f"Flat Person{flat}", "elector_number": f"KT-{flat + 1}"}]})
    rows.append({"stop": 3, "address": "31 Leighton Road", "people": [], "skip": True})
    return rows


def test_door_table_has_a_box_per_door_for_each_short_answer() -> None:
    """Yes/no, scale and choice questions get a box per door (Q1..Q3); free text does not; skipped doors get none."""
    from geo.walksheet import door_table, short_answer_questions

    short = short_answer_questions(QUESTIONS)
    assert [s.label for s in short] == ["Q1", "Q2", "Q3"]
    assert "Y/N" in short[0].hint and "1-5" in short[1].hint and "Housing" in short[2].hint
    table = door_table(_building_rows(), short)
    doors = [r for r in table if r.kind == "door"]
    assert len(doors) == 13
    assert all(len(r.boxes) == 3 for r in doors if not r.skip)
    assert next(r for r in doors if r.skip).boxes == []


def test_flats_are_listed_by_number_under_their_building() -> None:
    """The block shows once as stop 2 with its flats 1..11 under it, so the numbers do not seem to jump."""
    from geo.walksheet import door_table, short_answer_questions

    table = door_table(_building_rows(), short_answer_questions(QUESTIONS))
    building = [r for r in table if r.kind == "building"]
    assert len(building) == 1 and building[0].number == "2" and "29 Leighton Road" in building[0].address and "11 flats" in building[0].address
    flats = [r for r in table if r.kind == "door" and r.number == ""]
    assert [r.address for r in flats] == [f"Flat {n}" for n in range(1, 12)]
    assert [r.number for r in table if r.kind == "door" and r.number] == ["1", "3"]
    pdf = render_walk_sheet_pdf({"list_id": 5}, _building_rows(), QUESTIONS, [], [(-0.14, 51.55), (-0.1402, 51.5501), (-0.1404, 51.5502)],
                                "https://x.example/5", compress=False)
    text = pdf_text(pdf)
    for flat in range(1, 12):
        assert f"(Flat {flat})".encode() in text
    assert b"Q1 = Would you like a postal vote?" in text
    assert b"write answers on the back" not in text
    assert b"DO NOT KNOCK" in text


def test_map_draws_street_names() -> None:
    """Streets around the route are drawn with their names on the map."""
    route = [(-0.1400, 51.5500), (-0.1390, 51.5500), (-0.1390, 51.5508)]
    streets = [("Bartholomew Villas", [(-0.1410, 51.5500), (-0.1380, 51.5500)]), ("Leighton Grove", [(-0.1390, 51.5495), (-0.1390, 51.5512)])]
    pdf = render_walk_sheet_pdf({"list_id": 1}, _building_rows()[:1], [], route, [route[0]], "https://x.example/1", streets=streets, compress=False)
    text = pdf_text(pdf)
    assert b"Bartholomew Villas" in text and b"Leighton Grove" in text
