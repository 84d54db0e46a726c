"""Exports of results by area (CSV, GeoPackage, GeoJSON) and the one-page PDF meeting report.

Every export holds area-level figures only (suppressed like the API); the
follow-up CSV holds consented contact details only. Callers audit each export.
"""

from __future__ import annotations

import io
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import geopandas as gpd
import pandas as pd

from server.results.schemas import ProgressReport
from server.spreadsheet import frame_csv_text

EXPORT_COLUMNS = ["code", "name", "doors", "doors_knocked", "contacts", "contact_rate", "respondents", "support_share", "suppressed"]


def area_frame_to_csv(frame: gpd.GeoDataFrame) -> bytes:
    """The area results as CSV (no geometry), UTF-8 with a header row."""
    return frame_csv_text(pd.DataFrame(frame[EXPORT_COLUMNS])).encode("utf-8")


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
