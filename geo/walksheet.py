"""Printable walk sheets (PDF) for canvassers who work on paper.

Page 1 carries the list details, a map drawn from our own geometries (route line and
numbered stops on a plain background, no map tiles, so no third-party licence or network
access is needed) and a QR code that opens the list on a phone. Then a table of the
doors in walking order with names, elector numbers and tick boxes for outcome codes,
and the survey questions. Long lists flow onto as many pages as needed.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from typing import Any
from xml.sax.saxutils import escape

import numpy as np
import qrcode
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
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


class _RouteMap(Flowable):
    """The route and numbered stops, projected to EPSG:27700 and fitted to a box."""

    def __init__(
        self,
        route_lonlat: Sequence[Sequence[float]],
        stops_lonlat: Sequence[Sequence[float]],
        width: float,
        height: float,
    ):
        super().__init__()
        self.width = width
        self.height = height
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
) -> bytes:
    """Render a walk sheet PDF and return its bytes.

    plan_info: title/name, list_id, doors, length_m, minutes, area, date (all optional).
    stops_rows: in walking order, each with seq (or number), address and people
    [{name, elector_number}] (or a names string); notes optional.
    survey_questions: strings or dicts with "text" and optional "options".
    compress=False writes uncompressed streams (for tests).
    """
    buf = io.BytesIO()
    title = str(
        plan_info.get("title")
        or plan_info.get("name")
        or f"Walk list {plan_info.get('list_id', '')}"
    )
    doc = SimpleDocTemplate(
        buf,
        pagesize=A4,
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
    width = A4[0] - 24 * mm
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
    story.append(_RouteMap(route_lonlat, stop_points_lonlat, width, 150 * mm))
    story.append(Spacer(1, 3 * mm))
    legend = ", ".join(f"<b>{code}</b> = {name}" for code, name in OUTCOME_CODES)
    story.append(
        Paragraph(
            f"Outcome codes: {legend}. Tick one box per door; write answers on the back.", small
        )
    )
    story.append(PageBreak())

    header = ["#", "Address", "Electors (elector no.)"] + [code for code, _ in OUTCOME_CODES]
    data: list[list[Any]] = [header]
    for i, row in enumerate(stops_rows, start=1):
        addr = escape(str(row.get("address", "")))
        if row.get("notes"):
            addr += f"<br/><font size=7><i>{escape(str(row['notes']))}</i></font>"
        data.append(
            [
                str(row.get("seq", row.get("number", i))),
                Paragraph(addr, cell),
                Paragraph(_people_text(row), cell),
            ]
            + [""] * len(OUTCOME_CODES)
        )
    box_w = 10 * mm
    col_widths = [8 * mm, 58 * mm, width - 66 * mm - box_w * len(OUTCOME_CODES)] + [box_w] * len(
        OUTCOME_CODES
    )
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
            line = f"{n}. {escape(text)}"
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
            A4[0] - 12 * mm, 7 * mm, "Personal data: keep safe, return or shred after use."
        )
        canvas.restoreState()

    doc.build(story, onFirstPage=footer, onLaterPages=footer)
    return buf.getvalue()


__all__ = ["OUTCOME_CODES", "render_walk_sheet_pdf"]
