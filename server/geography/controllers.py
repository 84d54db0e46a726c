"""Organiser endpoints for imports (multipart uploads) and listing census areas."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated

from litestar import Controller, get, post
from litestar.datastructures import UploadFile
from litestar.enums import RequestEncodingType
from litestar.params import Body, FromPath, FromQuery
from sqlalchemy import select

from server.accounts.guards import MEMBERS, ORGANISERS, require_role
from server.audit import record_audit
from server.db.models import CensusArea
from server.dependencies import CurrentUser, DbSession
from server.errors import InvalidInput
from server.geography import services
from server.geography.schemas import CensusAreaOut, ImportReport
from server.settings import Settings

Upload = Annotated[UploadFile, Body(media_type=RequestEncodingType.MULTI_PART, title="file")]


async def _save_upload(data: UploadFile, directory: str) -> Path:
    """Stream an upload to a temporary file (readers need a path, GDAL in particular)."""
    name = Path(data.filename or "upload").name or "upload"
    path = Path(directory) / name
    with path.open("wb") as out:
        while chunk := await data.read(1024 * 1024):
            out.write(chunk)
    if path.stat().st_size == 0:
        raise InvalidInput("The uploaded file is empty.", errors=[{"field": "file", "message": "empty file"}])
    return path


class ImportController(Controller):
    """Upload census boundaries and tables, addresses and the register into a campaign."""

    path = "/api/campaigns/{campaign_id:int}/imports"
    tags = ["imports"]
    guards = [require_role(*ORGANISERS)]
    request_max_body_size = Settings().max_upload_bytes  # create_app replaces it with CANVASS_MAX_UPLOAD_BYTES

    @post("/boundaries", status_code=201)
    async def boundaries(
        self, campaign_id: FromPath[int], data: Upload, db_session: DbSession,
        vintage: FromQuery[int | None] = None, kind: FromQuery[str | None] = None,
    ) -> ImportReport:
        """Area polygons from GeoJSON, GeoPackage or a zipped Shapefile, in any CRS (vintage from the code field, e.g. LSOA21CD: 2021)."""
        with tempfile.TemporaryDirectory() as tmp:
            path = await _save_upload(data, tmp)
            return await services.import_boundaries(db_session, campaign_id, path, vintage=vintage, kind=kind)

    @post("/census", status_code=201)
    async def census(
        self, campaign_id: FromPath[int], data: Upload, db_session: DbSession, skip_bad_rows: FromQuery[bool] = False
    ) -> ImportReport:
        """A census table CSV (KS201EW, TS021, or the per-OA MLID layout) joined to areas by code."""
        with tempfile.TemporaryDirectory() as tmp:
            path = await _save_upload(data, tmp)
            return await services.import_census_table(db_session, campaign_id, path, skip_bad_rows=skip_bad_rows)

    @post("/addresses", status_code=201)
    async def addresses(
        self, campaign_id: FromPath[int], data: Upload, db_session: DbSession,
        format: FromQuery[str | None] = None, crs: FromQuery[str | None] = None, skip_bad_rows: FromQuery[bool] = False,
    ) -> ImportReport:
        """Addresses from an OSM PBF (`format=osm`), Code-Point Open (`codepoint`) or a CSV of points (`csv`); told from the file when not given."""
        if format is not None and format not in services.ADDRESS_FORMATS:
            raise InvalidInput(f"format must be one of {', '.join(services.ADDRESS_FORMATS)}", errors=[{"field": "format", "message": "unknown format"}])
        with tempfile.TemporaryDirectory() as tmp:
            path = await _save_upload(data, tmp)
            return await services.import_addresses(db_session, campaign_id, path, fmt=format, crs=crs, skip_bad_rows=skip_bad_rows)

    @post("/streets", status_code=201)
    async def streets(self, campaign_id: FromPath[int], data: Upload, db_session: DbSession) -> ImportReport:
        """Walkable streets from an OSM PBF (replacing the campaign's streets); major roads bound walk lists."""
        with tempfile.TemporaryDirectory() as tmp:
            path = await _save_upload(data, tmp)
            return await services.import_streets(db_session, campaign_id, path)

    @post("/register", status_code=201)
    async def register(
        self, campaign_id: FromPath[int], data: Upload, db_session: DbSession, user: CurrentUser,
        skip_bad_rows: FromQuery[bool] = False, replace: FromQuery[bool] = False,
    ) -> ImportReport:
        """An electoral register CSV, matched to the campaign's addresses (see README for columns); audited with its row count."""
        with tempfile.TemporaryDirectory() as tmp:
            path = await _save_upload(data, tmp)
            report = await services.import_register(db_session, campaign_id, path, skip_bad_rows=skip_bad_rows, replace=replace)
        record_audit(db_session, user, "import", "imports/register", campaign_id=campaign_id, row_count=report.rows_written,
                     detail={"source": report.source, "replace": replace, "rows_skipped": report.rows_skipped})
        return report


class AreaController(Controller):
    """The campaign's census areas (codes, names, populations)."""

    path = "/api/campaigns/{campaign_id:int}/areas"
    tags = ["targeting"]

    @get("/", guards=[require_role(*MEMBERS)])
    async def list_areas(self, campaign_id: FromPath[int], db_session: DbSession, kind: FromQuery[str | None] = None) -> list[CensusAreaOut]:
        """Areas linked to the campaign, optionally of one kind (OA, LSOA, ward, constituency)."""
        query = (
            select(CensusArea)
            .where(CensusArea.campaign_id == campaign_id)
            .order_by(CensusArea.code)
        )
        if kind:
            query = query.where(CensusArea.kind == kind)
        return [
            CensusAreaOut(code=a.code, name=a.name, kind=a.kind, vintage=a.vintage, population=a.population, census_table=a.census_table)
            for a in (await db_session.scalars(query)).all()
        ]
