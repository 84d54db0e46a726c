"""The `canvass` command line: serve, migrate, manage users, load the demo (and, later, importers).

Errors print one line to stderr and exit non-zero; long work shows progress.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, TypeVar

import typer

from server.settings import get_settings

T = TypeVar("T")

app = typer.Typer(help="Canvass: door-to-door canvassing backend.", no_args_is_help=True, pretty_exceptions_enable=False)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
users_app = typer.Typer(help="User accounts.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(users_app, name="users")
import_app = typer.Typer(help="Import census areas, census tables, addresses and the register.", no_args_is_help=True)
app.add_typer(import_app, name="import")


def fail(message: str, code: int = 1) -> None:
    """Print a one-line error and exit non-zero."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def run_with_session(work: Callable[..., Awaitable[T]]) -> T:
    """Run `work(session)` in one unit of work on the configured database (same services as requests)."""
    from server.db.session import create_engine_for, create_sessionmaker, session_scope
    from server.errors import DomainError

    async def _main() -> T:
        engine = create_engine_for(get_settings())
        try:
            async with session_scope(create_sessionmaker(engine)) as session:
                return await work(session)
        finally:
            await engine.dispose()

    try:
        return asyncio.run(_main())
    except DomainError as exc:
        fail(exc.detail)
        raise  # unreachable


@db_app.command("upgrade")
def db_upgrade(revision: Annotated[str, typer.Argument()] = "head") -> None:
    """Migrate the database (creates the SQLite file under var/ by default)."""
    from server.db.migrate import upgrade_database

    settings = get_settings()
    upgrade_database(settings.database_url, revision)
    typer.echo(f"database at {revision}: {_redact(settings.database_url)}")


@users_app.command("create")
def users_create(
    email: str,
    name: Annotated[str, typer.Option("--name", help="Display name")] = "",
    password: Annotated[str, typer.Option("--password", prompt=True, hide_input=True, confirmation_prompt=True)] = "",
    superuser: Annotated[bool, typer.Option("--superuser", help="System administrator")] = False,
    campaign: Annotated[str | None, typer.Option("--campaign", help="Campaign slug to join")] = None,
    role: Annotated[str, typer.Option("--role", help="admin, organiser, lead or canvasser")] = "canvasser",
) -> None:
    """Create a user (optionally a superuser, optionally with a role in a campaign)."""
    from sqlalchemy import select

    from server.accounts.security import build_jwt_auth
    from server.accounts.services import AccountService
    from server.db.models import Campaign, Role

    if role not in Role.__members__:
        fail(f"unknown role {role!r}; choose one of {', '.join(Role.__members__)}")
    if len(password) < 8:
        fail("password must be at least 8 characters")

    async def work(session: object) -> str:
        settings = get_settings()
        accounts = AccountService(session, settings, build_jwt_auth(settings.secret_key, 15))  # type: ignore[arg-type]
        user = await accounts.create_user(email, name or email.split("@")[0], password, is_superuser=superuser)
        if campaign:
            found = await session.scalar(select(Campaign).where(Campaign.slug == campaign))  # type: ignore[attr-defined]
            if found is None:
                fail(f"no campaign with slug {campaign!r}")
            await accounts.add_member(user, found.id, Role(role))
        return f"created user {user.id} <{user.email}>"

    typer.echo(run_with_session(work))


@app.command("demo")
def demo() -> None:
    """Load the synthetic demo town (idempotent) and print the demo logins."""
    from server.demo import load_demo

    summary = run_with_session(lambda session: load_demo(session, progress=lambda m: typer.echo(f"  {m}", err=True)))
    if summary.created:
        typer.echo(f"demo campaign {summary.campaign_id}: {summary.areas} areas, {summary.addresses} addresses, {summary.people} electors")
    else:
        typer.echo(f"demo campaign {summary.campaign_id} already loaded")
    for email, password, role in summary.logins:
        typer.echo(f"  {role:<10} {email} / {password}")


def _campaign_id(session: object, slug: str) -> int:
    """Look a campaign up by slug (or numeric id) for CLI commands."""
    from sqlalchemy import select

    from server.db.models import Campaign

    async def find() -> int:
        query = select(Campaign.id).where(Campaign.id == int(slug)) if slug.isdigit() else select(Campaign.id).where(Campaign.slug == slug)
        found = await session.scalar(query)  # type: ignore[attr-defined]
        if found is None:
            fail(f"no campaign {slug!r}")
        return int(found)

    return find()  # type: ignore[return-value]


def _run_import(what: str, path: Path, campaign: str, **options: object) -> None:
    """Run one importer with a progress bar; print the report; exit 1 on refusal."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from server.geography import services

    if not path.exists():
        fail(f"no such file: {path}")
    importer = {
        "boundaries": services.import_boundaries,
        "census": services.import_census_table,
        "addresses": services.import_addresses,
        "register": services.import_register,
        "streets": services.import_streets,
    }[what]
    kind = what
    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"), TimeElapsedColumn(), transient=True) as bar:
        task = bar.add_task(kind, total=None)

        def progress(stage: str, done: int, total: int | None) -> None:
            bar.update(task, description=f"{kind}: {stage}", completed=done, total=total)

        async def work(session: object) -> object:
            campaign_id = await _campaign_id(session, campaign)
            return await importer(session, campaign_id, path, progress=progress, **options)  # type: ignore[arg-type]

        report = run_with_session(work)
    typer.echo(f"{kind}: read {report.rows_read}, wrote {report.rows_written}, skipped {report.rows_skipped}, unmatched {report.unmatched}")  # type: ignore[attr-defined]
    for key, value in report.details.items():  # type: ignore[attr-defined]
        typer.echo(f"  {key}: {value}")
    for error in report.errors:  # type: ignore[attr-defined]
        typer.echo(f"  line {error.line}: {error.reason}", err=True)


CampaignOption = Annotated[str, typer.Option("--campaign", "-c", help="Campaign slug or id")]
SkipBad = Annotated[bool, typer.Option("--skip-bad-rows", help="Import good rows and report bad ones (default: refuse the file)")]


@import_app.command("boundaries")
def import_boundaries_cmd(
    path: Path, campaign: CampaignOption, vintage: Annotated[int, typer.Option()] = 2011,
    kind: Annotated[str | None, typer.Option(help="OA, LSOA, MSOA, ward, constituency (default: from codes)")] = None,
) -> None:
    """Area polygons from GeoJSON, GeoPackage or Shapefile (any CRS)."""
    _run_import("boundaries", path, campaign, vintage=vintage, kind=kind)


@import_app.command("census")
def import_census_cmd(path: Path, campaign: CampaignOption, skip_bad_rows: SkipBad = False) -> None:
    """A census table CSV (KS201EW, TS021 or the per-OA MLID layout)."""
    _run_import("census", path, campaign, skip_bad_rows=skip_bad_rows)


@import_app.command("addresses")
def import_addresses_cmd(
    path: Path, campaign: CampaignOption,
    fmt: Annotated[str, typer.Option("--format", help="osm, codepoint or csv")] = "osm",
    crs: Annotated[str | None, typer.Option(help="CRS of x/y columns in a CSV")] = None,
    skip_bad_rows: SkipBad = False,
) -> None:
    """Address points from an OSM PBF, Code-Point Open or a CSV of points."""
    _run_import("addresses", path, campaign, fmt=fmt, crs=crs, skip_bad_rows=skip_bad_rows)


@import_app.command("streets")
def import_streets_cmd(path: Path, campaign: CampaignOption) -> None:
    """Walkable streets from an OSM PBF (major roads become walk-list boundaries)."""
    _run_import("streets", path, campaign)


@import_app.command("register")
def import_register_cmd(path: Path, campaign: CampaignOption, skip_bad_rows: SkipBad = False) -> None:
    """An electoral register CSV (columns: see README)."""
    _run_import("register", path, campaign, skip_bad_rows=skip_bad_rows)


@app.command("campaign")
def campaign_create(slug: str, name: Annotated[str, typer.Option("--name")] = "") -> None:
    """Create a campaign (for imports of real data)."""
    from server.campaigns.schemas import CampaignCreate
    from server.campaigns.services import create_campaign

    async def work(session: object) -> int:
        campaign = await create_campaign(session, CampaignCreate(name=name or slug, slug=slug), None)  # type: ignore[arg-type]
        return campaign.id

    typer.echo(f"created campaign {run_with_session(work)} ({slug})")


retention_app = typer.Typer(help="Retention of personal canvass data.", no_args_is_help=True)
app.add_typer(retention_app, name="retention")


@retention_app.command("run")
def retention_run(campaign: Annotated[str | None, typer.Option("--campaign", "-c", help="Only this campaign (slug or id)")] = None) -> None:
    """Delete personal canvass data of every campaign past polling day + retention days (tombstones tell phones)."""
    from server.retention import run_retention

    async def work(session: object) -> list[object]:
        campaign_id = await _campaign_id(session, campaign) if campaign else None
        return await run_retention(session, campaign_id=campaign_id)  # type: ignore[arg-type,return-value]

    reports = run_with_session(work)
    if not reports:
        typer.echo("no campaign is due for retention")
    for report in reports:
        typer.echo(f"campaign {report.campaign_id} (due {report.due_on}): erased {report.people} people, "  # type: ignore[attr-defined]
                   f"{report.contact_attempts} contact attempts, {report.answers} answers, {report.observations} observations, "  # type: ignore[attr-defined]
                   f"{report.flags} flags, {report.conflicts} conflicts; cleared {report.notes_cleared} address notes")  # type: ignore[attr-defined]


@app.command("erase")
def erase_cmd(
    campaign: Annotated[str, typer.Option("--campaign", "-c", help="Campaign slug or id")],
    person: Annotated[int | None, typer.Option("--person", help="Person id to erase")] = None,
    address: Annotated[int | None, typer.Option("--address", help="Address id to erase (with its people)")] = None,
) -> None:
    """Erase one person or one address and everything about them (phones are told at their next pull)."""
    from server.sync.erasure import erase_record

    if (person is None) == (address is None):
        fail("give exactly one of --person or --address")
    entity, record_id = ("person", person) if person is not None else ("address", address)

    async def work(session: object) -> object:
        campaign_id = await _campaign_id(session, campaign)
        return await erase_record(session, campaign_id, entity, int(record_id), None)  # type: ignore[arg-type]

    run_with_session(work)
    typer.echo(f"erased {entity} {record_id}")


@app.command("serve")
def serve(
    host: Annotated[str, typer.Option()] = "127.0.0.1",
    port: Annotated[int, typer.Option()] = 8000,
    workers: Annotated[int, typer.Option()] = 1,
    reload: Annotated[bool, typer.Option()] = False,
) -> None:
    """Run the API and console with uvicorn."""
    import uvicorn

    settings = get_settings()
    typer.echo(f"Canvass on http://{host}:{port}  (database: {_redact(settings.database_url)})")
    typer.echo(f"  console   http://{host}:{port}/console")
    typer.echo(f"  API docs  http://{host}:{port}/schema")
    uvicorn.run("server.app:app_factory", factory=True, host=host, port=port, workers=workers, reload=reload, log_level="info")


def _redact(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def main() -> None:
    """Console-script entry point: unexpected errors become one line on stderr and exit status 1."""
    import os

    try:
        app()
    except Exception as exc:
        if os.environ.get("CANVASS_DEBUG"):
            raise
        typer.echo(f"error: {exc.__class__.__name__}: {exc}", err=True)
        sys.exit(1)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
