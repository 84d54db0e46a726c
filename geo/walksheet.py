"""Printable walk sheets (PDF) for canvassers who work on paper.

Page 1 carries the list details, a map drawn from our own geometries (the campaign's
streets with their names, the route line and numbered stops; no map tiles, so no
third-party licence or network access is needed) and a QR code that opens the list on a
phone. Then a table of the doors in walking order: a block of flats is one numbered stop
with its flats listed by flat number under it; each door has names, elector numbers, a box
for the outcome code and a box for each short survey answer (yes/no, scale, choice,
number). Doors whose household asked not to be visited are marked, with no boxes. Then
the survey questions. Long lists flow onto as many pages as needed.
"""

from __future__ import annotations

import io
import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from xml.sax.saxutils import escape

import numpy as np
import qrcode
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4, landscape
from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.platypus import (
    Flowable,
    KeepTogether,
    PageBreak,
    Paragraph,
    SimpleDocTemplate,
    Spacer,
    Table,
    TableStyle,
)

from geo.streets import lonlat_to_bng

OUTCOME_CODES: tuple[tuple[str, str], ...] = (
    ("S", "Spoke"),
    ("NI", "Not in"),
    ("R", "Refused"),
    ("M", "Moved"),
    ("CB", "Come back"),
    ("DNK", "Do not knock"),
)

PAPER_OUTCOMES: dict[str, str] = {"S": "spoke", "NI": "not_home", "R": "refused", "M": "moved", "CB": "come_back", "DNK": "do_not_visit"}
"""What each code written in a door's Outcome box records (the sync protocol's outcome)."""


class _RouteMap(Flowable):
    """The route and numbered stops, projected to EPSG:27700 and fitted to a box."""

    def __init__(
        self,
        route_lonlat: Sequence[Sequence[float]],
        stops_lonlat: Sequence[Sequence[float]],
        width: float,
        height: float,
        streets: Sequence[tuple[str, Sequence[Sequence[float]]]] = (),
    ):
        super().__init__()
        self.width = width
        self.height = height
        self.streets = [
            (str(name or ""), lonlat_to_bng(np.asarray(line, dtype=float)))
            for name, line in streets
            if len(line) >= 2
        ]
        self.route = (
            lonlat_to_bng(np.asarray(route_lonlat, dtype=float))
            if len(route_lonlat)
            else np.zeros((0, 2))
        )
        self.stops = (
            lonlat_to_bng(np.asarray(stops_lonlat, dtype=float))
            if len(stops_lonlat)
            else np.zeros((0, 2))
        )

    def wrap(self, avail_width: float, avail_height: float) -> tuple[float, float]:
        return self.width, self.height

    def draw(self) -> None:
        c = self.canv
        c.setStrokeColor(colors.grey)
        c.setLineWidth(0.5)
        c.rect(0, 0, self.width, self.height)
        pts = (
            np.vstack([a for a in (self.route, self.stops) if a.size])
            if (self.route.size or self.stops.size)
            else None
        )
        if pts is None:
            return
        lo = pts.min(axis=0)
        hi = pts.max(axis=0)
        span = np.maximum(hi - lo, 1.0)
        pad = 8 * mm
        scale = min((self.width - 2 * pad) / span[0], (self.height - 2 * pad) / span[1])
        off = np.array([(self.width - span[0] * scale) / 2, (self.height - span[1] * scale) / 2])

        def tr(p: np.ndarray) -> np.ndarray:
            return (p - lo) * scale + off

        self._draw_streets(tr)
        if len(self.route) >= 2:
            r = tr(self.route)
            c.setStrokeColor(colors.HexColor("#1f5fbf"))
            c.setLineWidth(2)
            path = c.beginPath()
            path.moveTo(*r[0])
            for x, y in r[1:]:
                path.lineTo(x, y)
            c.drawPath(path, stroke=1, fill=0)
        s = tr(self.stops) if len(self.stops) else self.stops
        c.setFont("Helvetica-Bold", 6)
        for i, (x, y) in enumerate(s, start=1):
            c.setFillColor(colors.HexColor("#d62728") if i == 1 else colors.white)
            c.setStrokeColor(colors.black)
            c.setLineWidth(0.6)
            c.circle(x, y, 5, stroke=1, fill=1)
            c.setFillColor(colors.white if i == 1 else colors.black)
            c.drawCentredString(x, y - 2, str(i))
        # scale bar (metres) and north arrow
        bar_m = _nice_length(span[0] / 4)
        c.setFillColor(colors.black)
        c.setStrokeColor(colors.black)
        c.setLineWidth(1.5)
        c.line(6 * mm, 5 * mm, 6 * mm + bar_m * scale, 5 * mm)
        c.setFont("Helvetica", 7)
        c.drawString(6 * mm, 6.5 * mm, f"{bar_m:g} m")
        c.drawCentredString(self.width - 8 * mm, self.height - 9 * mm, "N")
        c.line(
            self.width - 8 * mm, self.height - 16 * mm, self.width - 8 * mm, self.height - 10 * mm
        )


    def _draw_streets(self, tr: Any) -> None:
        """Streets as light lines, clipped to the map box, each name once along its longest visible stretch."""
        if not self.streets:
            return
        c = self.canv
        c.saveState()
        clip = c.beginPath()
        clip.rect(0, 0, self.width, self.height)
        c.clipPath(clip, stroke=0, fill=0)
        c.setStrokeColor(colors.HexColor("#c8c8c8"))
        c.setLineWidth(3)
        c.setLineCap(1)
        best: dict[str, tuple[float, np.ndarray, np.ndarray]] = {}
        for name, line in self.streets:
            xy = tr(line)
            path = c.beginPath()
            path.moveTo(*xy[0])
            for x, y in xy[1:]:
                path.lineTo(x, y)
            c.drawPath(path, stroke=1, fill=0)
            if not name:
                continue
            for a, b in itertools.pairwise(xy):
                mid = (a + b) / 2
                length = float(np.hypot(*(b - a)))
                inside = 0 <= mid[0] <= self.width and 0 <= mid[1] <= self.height
                if inside and length > best.get(name, (0.0,))[0]:
                    best[name] = (length, a, b)
        c.setFillColor(colors.HexColor("#555555"))
        c.setFont("Helvetica-Oblique", 6)
        for name, (length, a, b) in sorted(best.items()):
            if length < c.stringWidth(name, "Helvetica-Oblique", 6) * 0.5:
                continue
            angle = float(np.degrees(np.arctan2(b[1] - a[1], b[0] - a[0])))
            if angle > 90 or angle <= -90:
                angle -= 180 if angle > 90 else -180
            mid = (a + b) / 2
            c.saveState()
            c.translate(float(mid[0]), float(mid[1]))
            c.rotate(angle)
            c.drawCentredString(0, 2.5, name)
            c.restoreState()
        c.restoreState()


def _nice_length(x: float) -> float:
    if x <= 0:
        return 10.0
    e = 10 ** np.floor(np.log10(x))
    for m in (1, 2, 5, 10):
        if m * e >= x:
            return float(m * e)
    return float(10 * e)


class _QRCode(Flowable):
    """A QR code drawn as vector squares from the qrcode library's module matrix."""

    def __init__(self, data: str, size: float):
        super().__init__()
        qr = qrcode.QRCode(border=2, error_correction=qrcode.constants.ERROR_CORRECT_M)
        qr.add_data(data)
        qr.make(fit=True)
        self.matrix = qr.get_matrix()
        self.size = size

    def wrap(self, avail_width: float, avail_height: float) -> tuple[float, float]:
        return self.size, self.size

    def draw(self) -> None:
        n = len(self.matrix)
        cell = self.size / n
        c = self.canv
        c.setFillColor(colors.black)
        for r, row in enumerate(self.matrix):
            for q, on in enumerate(row):
                if on:
                    c.rect(q * cell, self.size - (r + 1) * cell, cell, cell, stroke=0, fill=1)


TEXT_KINDS = frozenset({"text", "free_text", "long_text", "note"})
MAX_ANSWER_BOXES = 14


@dataclass(frozen=True)
class AnswerColumn:
    """A short survey answer written in a box per door: label (Q1..), question text and how to answer."""

    label: str
    key: str
    text: str
    hint: str
    entries: Mapping[str, str] | None = None
    """What may be written in the box (upper case) and the answer it records; None: any number."""


def short_answer_questions(questions: Sequence[Any]) -> list[AnswerColumn]:
    """The questions answered in a box on the sheet (all but free text), labelled by their number in the survey."""
    columns = []
    for n, q in enumerate(questions, start=1):
        if not isinstance(q, Mapping) or str(q.get("kind", "text")) in TEXT_KINDS:
            continue
        kind = str(q.get("kind"))
        options = [str(o) for o in q.get("options") or []]
        entries: dict[str, str] | None
        if kind in ("yes_no", "yesno", "boolean"):
            hint = "Y/N"
            yes, no = (options[0], options[1]) if len(options) >= 2 else ("Yes", "No")
            entries = {"Y": yes, "N": no}
        elif kind == "scale":
            hint = f"{options[0]}-{options[-1]}" if options else "1-5"
            entries = {o.upper(): o for o in options} if options else {str(i): str(i) for i in range(1, 6)}
        elif kind == "number":
            hint, entries = "a number", None
        else:
            hint = " ".join(f"{i}={o}" for i, o in enumerate(options, start=1)) + (" (all that apply)" if kind.startswith("multi") else "")
            entries = {str(i): o for i, o in enumerate(options, start=1)}
        columns.append(AnswerColumn(label=f"Q{n}", key=str(q.get("key") or n), text=str(q.get("text", "")), hint=hint, entries=entries))
    return columns[:MAX_ANSWER_BOXES]


@dataclass
class SheetRow:
    """A row of the door table: a building heading (a block of flats) or a door with its answer boxes."""

    kind: str  # "building" or "door"
    number: str  # the stop number on the map ("" for a flat listed under its building)
    address: str
    people: list[Mapping[str, Any]] = field(default_factory=list)
    boxes: list[str] = field(default_factory=list)
    skip: bool = False
    notes: str = ""
    address_id: int | None = None


def door_table(rows: Sequence[Mapping[str, Any]], short: Sequence[AnswerColumn]) -> list[SheetRow]:
    """Doors in walking order; a stop with several doors becomes its building with the doors (flat by flat) under it."""
    groups: list[tuple[str, list[Mapping[str, Any]]]] = []
    for i, row in enumerate(rows, start=1):
        stop = str(row.get("stop", row.get("seq", row.get("number", i))))
        if groups and groups[-1][0] == stop:
            groups[-1][1].append(row)
        else:
            groups.append((stop, [row]))
    table: list[SheetRow] = []

    def door(row: Mapping[str, Any], number: str, address: str) -> SheetRow:
        skip = bool(row.get("skip"))
        return SheetRow("door", number, address, list(row.get("people") or []), [] if skip else [""] * len(short), skip, str(row.get("notes") or ""),
                        row.get("address_id"))

    for stop, members in groups:
        if len(members) == 1 and not members[0].get("flat"):
            table.append(door(members[0], stop, str(members[0].get("address", ""))))
            continue
        first = members[0]
        building = str(first.get("building") or first.get("address", ""))
        flats = all(m.get("flat") for m in members)
        table.append(SheetRow("building", stop, f"{building} ({len(members)} {'flats' if flats else 'doors'})"))
        for member in members:
            table.append(door(member, "", str(member.get("flat") or member.get("address", ""))))
    return table


def _people_text(row: Mapping[str, Any]) -> str:
    people = row.get("people")
    if people:
        parts = []
        for p in people:
            name = escape(str(p.get("name", "")))
            num = p.get("elector_number")
            parts.append(f"{name} <font size=7>({escape(str(num))})</font>" if num else name)
        return "<br/>".join(parts)
    names = row.get("names")
    return escape(str(names)) if names else ""


def render_walk_sheet_pdf(
    plan_info: Mapping[str, Any],
    stops_rows: Sequence[Mapping[str, Any]],
    survey_questions: Sequence[Any],
    route_lonlat: Sequence[Sequence[float]],
    stop_points_lonlat: Sequence[Sequence[float]],
    qr_url: str,
    compress: bool = True,
    streets: Sequence[tuple[str, Sequence[Sequence[float]]]] = (),
) -> bytes:
    """Render a walk sheet PDF and return its bytes.

    plan_info: title/name, list_id, doors, length_m, minutes, area, date (all optional).
    stops_rows: in walking order, each with stop (or seq/number), address and people
    [{name, elector_number}] (or a names string); for a flat also building and flat;
    skip (do not knock) and notes optional. Rows of one stop are one building.
    survey_questions: strings or dicts with "text" and optional "kind", "options".
    stop_points_lonlat: one point per stop, in stop order (the map's numbers).
    streets: (name, [(lon, lat), ...]) lines drawn under the route, with their names.
    compress=False writes uncompressed streams (for tests).
    """
    buf = io.BytesIO()
    short = short_answer_questions(survey_questions)
    pagesize = landscape(A4) if len(short) > 6 else A4
    title = str(
        plan_info.get("title")
        or plan_info.get("name")
        or f"Walk list {plan_info.get('list_id', '')}"
    )
    doc = SimpleDocTemplate(
        buf,
        pagesize=pagesize,
        leftMargin=12 * mm,
        rightMargin=12 * mm,
        topMargin=12 * mm,
        bottomMargin=14 * mm,
        title=title,
        pageCompression=1 if compress else 0,
    )
    styles = getSampleStyleSheet()
    small = ParagraphStyle("small", parent=styles["Normal"], fontSize=8, leading=9.5)
    cell = ParagraphStyle("cell", parent=styles["Normal"], fontSize=8.5, leading=10)
    width = pagesize[0] - 24 * mm
    story: list[Flowable] = []

    details = []
    for key, label, fmt in (
        ("list_id", "List", "{}"),
        ("area", "Area", "{}"),
        ("doors", "Doors", "{}"),
        ("length_m", "Walk", "{:.0f} m"),
        ("minutes", "Time", "about {:.0f} min"),
        ("date", "Date", "{}"),
    ):
        if plan_info.get(key) is not None:
            details.append(f"<b>{label}:</b> {escape(fmt.format(plan_info[key]))}")
    head = Table(
        [
            [
                [
                    Paragraph(escape(title), styles["Title"]),
                    Paragraph(" &nbsp; ".join(details), styles["Normal"]),
                    Spacer(1, 2 * mm),
                    Paragraph(
                        "Scan to open this list on a phone. Start at the red stop 1 and follow the numbers.",
                        small,
                    ),
                ],
                _QRCode(qr_url, 30 * mm),
            ]
        ],
        colWidths=[width - 34 * mm, 34 * mm],
    )
    head.setStyle(TableStyle([("VALIGN", (0, 0), (-1, -1), "TOP")]))
    story.append(head)
    story.append(Spacer(1, 3 * mm))
    map_height = 150 * mm if pagesize == A4 else pagesize[1] - 85 * mm
    story.append(_RouteMap(route_lonlat, stop_points_lonlat, width, map_height, streets))
    story.append(Spacer(1, 3 * mm))
    legend = ", ".join(f"<b>{code}</b> = {name}" for code, name in OUTCOME_CODES)
    story.append(
        Paragraph(
            f"Outcome codes: {legend}. Write one code per door in its Outcome box and short answers in its Q boxes; "
            "free-text answers go on the back, next to the door's number.",
            small,
        )
    )
    story.append(PageBreak())
    for column in short:
        story.append(Paragraph(escape(f"{column.label} = {column.text} ({column.hint})"), small))
    if short:
        story.append(Spacer(1, 2 * mm))

    header = ["#", "Address", "Electors (elector no.)", "Outcome"] + [c.label for c in short]
    data: list[list[Any]] = [header]
    commands: list[tuple[Any, ...]] = []
    for row in door_table(stops_rows, short):
        r = len(data)
        addr = escape(row.address)
        if row.notes:
            addr += f"<br/><font size=7><i>{escape(row.notes)}</i></font>"
        if row.kind == "building":
            data.append([row.number, Paragraph(f"<b>{addr}</b>", cell)] + [""] * (len(header) - 2))
            commands += [("SPAN", (1, r), (-1, r)), ("BACKGROUND", (0, r), (-1, r), colors.HexColor("#e3ecf7"))]
            continue
        if row.skip:
            data.append([row.number, Paragraph(addr, cell), Paragraph(_people_text({"people": row.people}), cell), "DO NOT KNOCK"] + [""] * len(short))
            commands += [("SPAN", (3, r), (-1, r)), ("BACKGROUND", (0, r), (-1, r), colors.HexColor("#d9d9d9")),
                         ("FONT", (3, r), (3, r), "Helvetica-Bold", 7)]
            continue
        data.append([row.number, Paragraph(addr, cell), Paragraph(_people_text({"people": row.people}), cell), "", *row.boxes])
    box_w = 10 * mm
    outcome_w = 14 * mm
    rest = width - 8 * mm - outcome_w - box_w * len(short)
    col_widths = [8 * mm, rest * 0.55, rest * 0.45, outcome_w] + [box_w] * len(short)
    table = Table(data, colWidths=col_widths, repeatRows=1)
    table.setStyle(
        TableStyle(
            [
                ("FONT", (0, 0), (-1, 0), "Helvetica-Bold", 8),
                ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#e8e8e8")),
                ("GRID", (0, 0), (-1, -1), 0.5, colors.grey),
                ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
                ("ALIGN", (3, 0), (-1, -1), "CENTER"),
                ("FONTSIZE", (0, 1), (0, -1), 8),
                ("ROWBACKGROUNDS", (0, 1), (-1, -1), [colors.white, colors.HexColor("#f6f6f6")]),
                *commands,
            ]
        )
    )
    story.append(table)

    if survey_questions:
        story.append(Spacer(1, 5 * mm))
        qs: list[Flowable] = [Paragraph("Survey questions", styles["Heading3"])]
        for n, q in enumerate(survey_questions, start=1):
            if isinstance(q, Mapping):
                text = str(q.get("text", ""))
                opts = q.get("options") or []
            else:
                text, opts = str(q), []
            line = f"Q{n}. {escape(text)}"
            if opts:
                line += (
                    "<br/><font size=8>"
                    + " &nbsp; ".join(f"[ ] {escape(str(o))}" for o in opts)
                    + "</font>"
                )
            qs.append(Paragraph(line, styles["Normal"]))
            qs.append(Spacer(1, 1.5 * mm))
        story.append(KeepTogether(qs))

    def footer(canvas: Any, d: Any) -> None:
        canvas.saveState()
        canvas.setFont("Helvetica", 7)
        canvas.drawString(12 * mm, 7 * mm, f"{title} - page {d.page}")
        canvas.drawRightString(
            pagesize[0] - 12 * mm, 7 * mm, "Personal data: keep safe, return or shred after use."
        )
        canvas.restoreState()

    doc.build(story, onFirstPage=footer, onLaterPages=footer)
    return buf.getvalue()


__all__ = ["OUTCOME_CODES", "PAPER_OUTCOMES", "AnswerColumn", "SheetRow", "door_table", "render_walk_sheet_pdf", "short_answer_questions"]
