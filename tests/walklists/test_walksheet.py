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
