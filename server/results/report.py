"""Exports of results by area (CSV, GeoPackage, GeoJSON), follow-up CSVs and the PDF meeting report (one to three A4 pages).

Every export holds area-level figures only (suppressed like the API); the
follow-up CSV holds consented contact details only. Callers audit each export.
"""

from __future__ import annotations

import io
import math
import re
import tempfile
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from html import escape
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd

from server.errors import InvalidInput
from server.results.meeting import MeetingReportData
from server.results.schemas import FollowUpPerson, QuestionBreakdown
from server.spreadsheet import csv_text, frame_csv_text

EXPORT_COLUMNS = ["code", "name", "doors", "doors_knocked", "contacts", "contact_rate", "respondents", "support_share", "suppressed"]


def area_frame_to_csv(frame: gpd.GeoDataFrame) -> bytes:
    """The area results as CSV (no geometry), UTF-8 with a header row."""
    return frame_csv_text(pd.DataFrame(frame[EXPORT_COLUMNS])).encode("utf-8")


def csv_bytes(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> bytes:
    """Rows as UTF-8 CSV with a header, formula cells neutralised (server.spreadsheet): every follow-up layout goes through it."""
    return csv_text(header, rows).encode("utf-8")


FOLLOW_UP_LAYOUTS = ("canvass", "nationbuilder", "action_network")
"""Column layouts of the follow-up CSV: ours, and the ones NationBuilder's and Action Network's importers map by name."""
_MOBILE = re.compile(r"^(?:\+?44\s*\(?0?\)?\s*|0)7")


def _is_mobile(phone: str) -> bool:
    """A British mobile number (07..., +44 7...): NationBuilder keeps mobiles in their own column."""
    return bool(_MOBILE.match(phone.strip()))


def _canvass_rows(people: list[FollowUpPerson]) -> tuple[list[str], list[list[Any]]]:
    header = ["person_id", "name", "address", "postcode", "area_code", "phone", "email", "contact_consent", "reasons", "language", "done"]
    return header, [[p.person_id, p.name, p.address, p.postcode, p.area_code or "", p.phone or "", p.email or "", p.contact_consent,
                     ";".join(p.reasons), p.language or "", ";".join(p.done)] for p in people]


def _nationbuilder_rows(people: list[FollowUpPerson]) -> tuple[list[str], list[list[Any]]]:
    """NationBuilder's people import: its standard field names, reasons as tags, our id as external_id."""
    header = ["external_id", "first_name", "last_name", "email", "email_opt_in", "phone_number", "mobile_number",
              "primary_address1", "primary_address2", "primary_address3", "primary_city", "primary_zip", "primary_country_code",
              "language", "is_volunteer", "tag_list", "note"]
    rows = []
    for p in people:
        phone = p.phone or ""
        lines = [*p.address_lines[:3], "", "", ""][:3]
        rows.append([f"canvass-{p.person_id}", p.first_name, p.last_name, p.email or "", "Y" if p.email else "N",
                     "" if _is_mobile(phone) else phone, phone if _is_mobile(phone) else "", *lines, "", p.postcode, "GB",
                     p.language or "", "Y" if "volunteer" in p.reasons else "N", ",".join(f"canvass-{r}" for r in p.reasons),
                     f"Asked on the doorstep: {', '.join(p.reasons)} (contact consent: {p.contact_consent})"])
    return header, rows


def _action_network_rows(people: list[FollowUpPerson]) -> tuple[list[str], list[list[Any]]]:
    """Action Network's upload: its core field names (matched automatically), reasons and our id as custom fields."""
    header = ["first_name", "last_name", "email", "phone_number", "address_line", "city", "zip_code", "country", "language",
              "canvass_id", "canvass_follow_up"]
    return header, [[p.first_name, p.last_name, p.email or "", p.phone or "", ", ".join(p.address_lines), "", p.postcode, "GB",
                     p.language or "", p.person_id, ";".join(p.reasons)] for p in people]


def check_follow_up_layout(layout: str) -> str:
    """The layout name if known; a 422 problem otherwise."""
    if layout not in FOLLOW_UP_LAYOUTS:
        raise InvalidInput(f"layout must be one of {', '.join(FOLLOW_UP_LAYOUTS)}.", errors=[{"field": "layout", "message": "unknown layout"}])
    return layout


def follow_ups_to_csv(people: list[FollowUpPerson], layout: str = "canvass") -> bytes:
    """The follow-up list (consented contact details only) as CSV in one of FOLLOW_UP_LAYOUTS."""
    build = {"canvass": _canvass_rows, "nationbuilder": _nationbuilder_rows, "action_network": _action_network_rows}[check_follow_up_layout(layout)]
    header, rows = build(people)
    return csv_bytes(header, rows)


def _nullable_frame(frame: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    out = frame[[*EXPORT_COLUMNS, "geometry"]].copy()
    for column in ("doors_knocked", "contacts", "respondents"):
        out[column] = pd.array(out[column], dtype="Int64")
    for column in ("contact_rate", "support_share"):
        out[column] = pd.to_numeric(out[column], errors="coerce").astype(float)
    out["suppressed"] = out["suppressed"].astype(bool)
    return out


def area_frame_to_file(frame: gpd.GeoDataFrame, driver: str) -> bytes:
    """The area results written by pyogrio as a GeoPackage ('GPKG') or GeoJSON file, returned as bytes."""
    suffix = {"GPKG": ".gpkg", "GeoJSON": ".geojson"}[driver]
    with tempfile.TemporaryDirectory(prefix="canvass-export-") as tmp:
        path = Path(tmp) / f"results{suffix}"
        out = _nullable_frame(frame)
        kwargs = {"layer": "results_by_area"} if driver == "GPKG" else {}
        out.to_file(path, driver=driver, engine="pyogrio", **kwargs)
        return path.read_bytes()


def _count(n: int | None, threshold: int) -> str:
    return f"<{threshold}" if n is None else f"{n:,}"


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{x:.0%}"


def _answer_bars(question: QuestionBreakdown, threshold: int, width: float, title: str = "") -> Any:
    """A horizontal bar chart of one question's answers as vector shapes, each bar labelled with its count (hidden cells: no bar)."""
    from reportlab.graphics.shapes import Drawing, Rect, String
    from reportlab.lib import colors

    bar_h, gap, label_w, count_w = 9.0, 3.0, 0.34 * width, 30.0
    top_pad = 12.0 if title else 0.0
    height = top_pad + len(question.answers) * (bar_h + gap) + 2
    drawing = Drawing(width, height)
    if title:
        drawing.add(String(0, height - 9, title if len(title) < 70 else title[:67] + "...", fontName="Helvetica-Bold", fontSize=7.5))
    top = max((a.count or 0 for a in question.answers), default=0) or 1
    span = width - label_w - count_w
    for i, a in enumerate(question.answers):
        y = height - top_pad - (i + 1) * (bar_h + gap)
        label = a.value if len(a.value) < 28 else a.value[:25] + "..."
        drawing.add(String(label_w - 4, y + 2, label, fontName="Helvetica", fontSize=7, textAnchor="end"))
        length = span * (a.count or 0) / top
        if a.count:
            drawing.add(Rect(label_w, y, length, bar_h, fillColor=colors.Color(0.3, 0.3, 0.3), strokeColor=colors.black, strokeWidth=0.4))
        drawing.add(String(label_w + length + 3, y + 2, _count(a.count, threshold), fontName="Helvetica", fontSize=7))
    return drawing


def _area_map(frame: gpd.GeoDataFrame, threshold: int, size: float) -> Any:
    """A small grey-scale map of contact rate by area (darker = higher; suppressed areas white, dashed) as vector shapes."""
    from reportlab.graphics.shapes import Drawing, Polygon, String
    from reportlab.lib import colors

    drawing = Drawing(size, size + 12)
    drawing.add(String(0, size + 3, f"Contact rate by area: darker = higher; white, dashed: fewer than {threshold} doors", fontName="Helvetica", fontSize=6))
    if frame.empty:
        return drawing
    minx, miny, maxx, maxy = frame.total_bounds
    aspect = math.cos(math.radians((miny + maxy) / 2))
    scale = size / max((maxx - minx) * aspect, maxy - miny, 1e-9)
    rates = pd.to_numeric(frame["contact_rate"], errors="coerce")
    for geometry, rate in zip(frame.geometry, rates, strict=True):
        if geometry is None or geometry.is_empty:
            continue
        for part in getattr(geometry, "geoms", [geometry]):
            points: list[float] = []
            for x, y in part.exterior.coords:
                points += [(x - minx) * aspect * scale, (y - miny) * scale]
            if pd.isna(rate):
                drawing.add(Polygon(points, fillColor=colors.white, strokeColor=colors.Color(0.4, 0.4, 0.4), strokeWidth=0.4, strokeDashArray=[1.5, 1.5]))
            else:
                grey = 0.92 - 0.8 * float(rate)
                drawing.add(Polygon(points, fillColor=colors.Color(grey, grey, grey), strokeColor=colors.black, strokeWidth=0.3))
    return drawing


def meeting_report_pdf(data: MeetingReportData) -> bytes:
    """The meeting report: one to three A4 pages, black and white, every chart beside a table of its numbers."""
    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import getSampleStyleSheet
    from reportlab.lib.units import mm
    from reportlab.platypus import (
        KeepTogether,
        Paragraph,
        SimpleDocTemplate,
        Spacer,
        Table,
        TableStyle,
    )

    t = data.threshold
    c = data.progress.campaign
    styles = getSampleStyleSheet()
    h1, h2, body, small = styles["Title"], styles["Heading3"], styles["BodyText"], styles["Italic"]
    h1.alignment = 0
    small.fontSize, small.leading = 7.5, 9
    grid = TableStyle([
        ("FONT", (0, 0), (-1, -1), "Helvetica", 8), ("FONT", (0, 0), (-1, 0), "Helvetica-Bold", 8),
        ("LINEBELOW", (0, 0), (-1, 0), 0.8, colors.black), ("LINEBELOW", (0, 1), (-1, -1), 0.25, colors.grey),
        ("ALIGN", (1, 0), (-1, -1), "RIGHT"), ("TOPPADDING", (0, 0), (-1, -1), 1.5), ("BOTTOMPADDING", (0, 0), (-1, -1), 1.5),
    ])

    def table(rows: list[list[str]], widths: list[float] | None = None) -> Table:
        out = Table(rows, colWidths=widths, hAlign="LEFT", repeatRows=1)
        out.setStyle(grid)
        return out

    story: list[Any] = [Paragraph(f"{escape(data.campaign_name)}: canvassing report", h1)]
    period = f"{data.period[0]:%d %b %Y} to {data.period[1]:%d %b %Y}" if data.period else "no canvassing recorded yet"
    story.append(Paragraph(f"Campaign period: {period}. Generated {datetime.now(UTC):%d %b %Y %H:%M} UTC. Figures by area, ward, target, "
                           f"list and canvasser only; counts below {t} are shown as &lt;{t} and their shares are not shown.", small))
    story.append(Spacer(1, 3 * mm))
    canvassers = sum(1 for x in data.canvassers if x.id is not None)
    story.append(Paragraph(
        f"<b>{c.doors_knocked:,} doors knocked</b>, {c.contacts:,} contacts made, contact rate <b>{_pct(c.contact_rate)}</b>; "
        f"{c.attempts:,} knocks in all by {canvassers:,} canvasser{'s' if canvassers != 1 else ''}; {c.doors_remaining:,} doors remaining on the lists.",
        body))

    # Voting intention and the key questions: charts with their numbers beside them.
    vi = data.voting_intention
    if vi is not None:
        story.append(Paragraph("Voting intention", h2))
        chart = _answer_bars(vi, t, 82 * mm)
        rows = [["Answer", "Respondents", "Share"]] + [
            [a.value, _count(a.count, t), _pct(a.count / vi.respondents) if a.count is not None and vi.respondents else ""] for a in vi.answers
        ]
        rows.append(["All respondents", _count(vi.respondents, t) if vi.respondents is not None else "(some suppressed)", ""])
        story.append(Table([[chart, table(rows, [38 * mm, 22 * mm, 14 * mm])]], colWidths=[88 * mm, 80 * mm], hAlign="LEFT",
                           style=[("VALIGN", (0, 0), (-1, -1), "TOP")]))
    if data.key_questions:
        story.append(Paragraph("Key questions", h2))
        charts = [_answer_bars(q, t, 82 * mm, q.text) for q in data.key_questions]
        pairs = [charts[i : i + 2] + [""] * (2 - len(charts[i : i + 2])) for i in range(0, len(charts), 2)]
        story.append(Table(pairs, colWidths=[88 * mm, 88 * mm], hAlign="LEFT", style=[("VALIGN", (0, 0), (-1, -1), "TOP")]))
        rows = [["Question", "Answers (respondents)"]] + [
            [Paragraph(escape(q.text), small), Paragraph(escape("; ".join(f"{a.value} {_count(a.count, t)}" for a in q.answers)), small)]
            for q in data.key_questions
        ]
        story.append(table(rows, [70 * mm, 100 * mm]))

    # By ward and by target, with names.
    support = data.support or "support"
    header = ["Name", "Doors knocked", "Contact rate", "Voting-intention respondents", f"{support} share"]

    def area_rows(rows: list[Any]) -> list[list[str]]:
        return [header] + [[r.name, _count(r.knocked, t), _pct(r.contact_rate), _count(r.respondents, t),
                            _pct(r.support_share) if r.support_share is not None else f"<{t}"] for r in rows]

    widths = [55 * mm, 24 * mm, 22 * mm, 42 * mm, 24 * mm]
    story.append(Paragraph("By ward", h2))
    story.append(table(area_rows(data.wards), widths) if data.wards else Paragraph(escape(data.wards_note), body))
    story.append(Paragraph("By target area", h2))
    story.append(table(area_rows(data.targets), widths) if data.targets else Paragraph("No target areas yet.", body))
    story.append(Paragraph("Targets: sums over the walk lists cut from each target (answers recorded on those lists).", small))

    story.append(Paragraph("By canvasser", h2))
    rows = [["Canvasser", "Doors knocked", "Contacts", "Contact rate", "Knocks"]] + [
        [x.name, f"{x.doors_knocked:,}", f"{x.contacts:,}", _pct(x.contact_rate), f"{x.attempts:,}"] for x in data.canvassers
    ]
    story.append(table(rows, [60 * mm, 26 * mm, 22 * mm, 24 * mm, 20 * mm]) if data.canvassers else Paragraph("No knocks yet.", body))

    # Sign-ups, issues and the map side by side.
    signups = table([["Signed up on the doorstep", "People"]] + [[k, _count(v, t)] for k, v in data.signups.items()], [48 * mm, 18 * mm])
    issues = table([["Local issues raised most", "Respondents"]] + [[k, _count(v, t)] for k, v in data.issues], [48 * mm, 18 * mm])
    map_image = _area_map(data.area_frame, t, 72 * mm)
    story.append(Spacer(1, 3 * mm))
    story.append(KeepTogether(Table([[[signups, Spacer(1, 4 * mm), issues], map_image]], colWidths=[80 * mm, 90 * mm], hAlign="LEFT",
                                    style=[("VALIGN", (0, 0), (-1, -1), "TOP")])))

    buffer = io.BytesIO()
    doc = SimpleDocTemplate(buffer, pagesize=A4, leftMargin=18 * mm, rightMargin=18 * mm, topMargin=14 * mm, bottomMargin=14 * mm,
                            title=f"{data.campaign_name}: canvassing report", pageCompression=1)

    def footer(canvas: Any, document: Any) -> None:
        canvas.setFont("Helvetica", 7)
        canvas.drawRightString(A4[0] - 18 * mm, 8 * mm, f"{data.campaign_name} - page {document.page}")

    doc.build(story, onFirstPage=footer, onLaterPages=footer)
    return buffer.getvalue()
