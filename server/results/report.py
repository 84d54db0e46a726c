"""Exports of results by area (CSV, GeoPackage, GeoJSON) and the one-page PDF meeting report.

Every export holds area-level figures only (suppressed like the API); the
follow-up CSV holds consented contact details only. Callers audit each export.
"""

from __future__ import annotations

import csv
import io
import re
import tempfile
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd

from server.errors import InvalidInput
from server.results.schemas import FollowUpPerson, ProgressReport

EXPORT_COLUMNS = ["code", "name", "doors", "doors_knocked", "contacts", "contact_rate", "respondents", "support_share", "suppressed"]


def area_frame_to_csv(frame: gpd.GeoDataFrame) -> bytes:
    """The area results as CSV (no geometry), UTF-8 with a header row."""
    return pd.DataFrame(frame[EXPORT_COLUMNS]).to_csv(index=False).encode("utf-8")


def csv_bytes(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> bytes:
    """Rows as UTF-8 CSV with a header: the one writer every follow-up export goes through (so a fix here covers all)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue().encode("utf-8")


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


def meeting_report_pdf(campaign_name: str, progress: ProgressReport, frame: gpd.GeoDataFrame, issues: list[tuple[str, int]], threshold: int) -> bytes:
    """A one-page A4 PDF: headline figures, attempts by day chart, and a map of contact rate by area (our geometries)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.units import mm
    from reportlab.lib.utils import ImageReader
    from reportlab.pdfgen import canvas

    c = progress.campaign
    # Chart: attempts and contacts by day.
    fig, ax = plt.subplots(figsize=(7.0, 2.6), dpi=110)
    days = [b.bucket[5:] for b in progress.by_day]
    ax.bar(days, [b.attempts for b in progress.by_day], color="#9db4d0", label="knocks")
    ax.bar(days, [b.contacts for b in progress.by_day], color="#1f4e79", label="answered (spoke/refused)")
    ax.set_title("Knocks by day")
    ax.legend(fontsize=7, loc="upper left")
    ax.tick_params(axis="x", labelsize=7, rotation=45)
    ax.tick_params(axis="y", labelsize=7)
    fig.tight_layout()
    chart = io.BytesIO()
    fig.savefig(chart, format="png")
    plt.close(fig)
    # Map: contact rate by area, suppressed areas hatched grey.
    fig, ax = plt.subplots(figsize=(4.2, 4.2), dpi=110)
    plot = frame.copy()
    plot["contact_rate"] = pd.to_numeric(plot["contact_rate"], errors="coerce")
    if not plot.empty:
        plot.plot(ax=ax, color="#eeeeee", edgecolor="#999999", linewidth=0.3, hatch="//")
        known = plot[plot["contact_rate"].notna()]
        if not known.empty:
            known.plot(ax=ax, column="contact_rate", cmap="Blues", vmin=0, vmax=1, edgecolor="#555555", linewidth=0.3, legend=True,
                       legend_kwds={"shrink": 0.6, "label": "contact rate"})
    ax.set_axis_off()
    ax.set_title(f"Contact rate by area (hatched: fewer than {threshold} doors)", fontsize=8)
    fig.tight_layout()
    map_png = io.BytesIO()
    fig.savefig(map_png, format="png")
    plt.close(fig)

    buffer = io.BytesIO()
    pdf = canvas.Canvas(buffer, pagesize=A4, pageCompression=1)
    width, height = A4
    pdf.setTitle(f"{campaign_name}: canvassing report")
    y = height - 20 * mm
    pdf.setFont("Helvetica-Bold", 16)
    pdf.drawString(18 * mm, y, f"{campaign_name}: canvassing report")
    pdf.setFont("Helvetica", 8)
    pdf.setFillColor(colors.grey)
    pdf.drawString(18 * mm, y - 5 * mm, f"Generated {datetime.now(UTC):%Y-%m-%d %H:%M} UTC. Figures by area, list and canvasser only; small counts (< {threshold}) suppressed.")
    pdf.setFillColor(colors.black)
    rate = f"{c.contact_rate:.0%}" if c.contact_rate is not None else "n/a"
    headline = [
        ("Doors knocked", f"{c.doors_knocked:,}"),
        ("Contacts made", f"{c.contacts:,}"),
        ("Contact rate", rate),
        ("Knocks", f"{c.attempts:,}"),
        ("Doors remaining", f"{c.doors_remaining:,}"),
        ("Canvassers", f"{sum(1 for x in progress.canvassers if x.attempts):,}"),
    ]
    y -= 16 * mm
    box_w = (width - 36 * mm) / len(headline)
    for i, (label, value) in enumerate(headline):
        x = 18 * mm + i * box_w
        pdf.setFont("Helvetica-Bold", 14)
        pdf.drawString(x, y, value)
        pdf.setFont("Helvetica", 7.5)
        pdf.drawString(x, y - 4.5 * mm, label)
    y -= 10 * mm
    chart_h = 62 * mm
    pdf.drawImage(ImageReader(io.BytesIO(chart.getvalue())), 18 * mm, y - chart_h, width=width - 36 * mm, height=chart_h)
    y -= chart_h + 4 * mm
    map_h = 100 * mm
    pdf.drawImage(ImageReader(io.BytesIO(map_png.getvalue())), 18 * mm, y - map_h, width=map_h, height=map_h)
    tx = 18 * mm + map_h + 8 * mm
    ty = y - 6 * mm
    pdf.setFont("Helvetica-Bold", 10)
    pdf.drawString(tx, ty, "Outcomes")
    pdf.setFont("Helvetica", 8)
    for code, n in c.outcomes.items():
        if n:
            ty -= 4.2 * mm
            pdf.drawString(tx, ty, f"{code.replace('_', ' ')}: {n:,}")
    ty -= 8 * mm
    pdf.setFont("Helvetica-Bold", 10)
    pdf.drawString(tx, ty, "Top local issues")
    pdf.setFont("Helvetica", 8)
    for issue, n in issues[:8]:
        ty -= 4.2 * mm
        pdf.drawString(tx, ty, f"{issue}: {n:,}")
    y -= map_h + 6 * mm
    pdf.setFont("Helvetica-Bold", 10)
    pdf.drawString(18 * mm, y, "Walk lists (most doors remaining)")
    pdf.setFont("Helvetica", 7.5)
    rows = sorted((w for w in progress.walk_lists if w.id is not None), key=lambda w: -w.doors_remaining)[:6]
    for w in rows:
        y -= 4 * mm
        r = f"{w.contact_rate:.0%}" if w.contact_rate is not None else "n/a"
        pdf.drawString(18 * mm, y, f"{w.name[:50]}: {w.doors_knocked}/{w.doors_on_lists} doors, contact rate {r}, {w.doors_remaining} remaining")
    pdf.showPage()
    pdf.save()
    return buffer.getvalue()
