"""The `canvass` command line: serve, migrate, manage users, load the demo (and, later, importers).

Errors print one line to stderr and exit non-zero; long work shows progress.
"""

from __future__ import annotations

import asyncio
import logging
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
surveys_app = typer.Typer(help="Surveys: export a version to a YAML or JSON file, import one as a draft (and publish it).", no_args_is_help=True)
app.add_typer(surveys_app, name="surveys")


def fail(message: str, code: int = 1) -> None:
    """Print a one-line error and exit non-zero."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def run_with_sessionmaker(work: Callable[..., Awaitable[T]]) -> T:
    """Run `work(sessionmaker)` on the configured database; a domain error becomes one line and exit 1.

    This is the one provider of sessions outside requests: every command gets the same
    services the HTTP controllers call, on sessions from here.
    """
    from server.db.session import create_engine_for, create_sessionmaker
    from server.errors import DomainError

    async def _main() -> T:
        engine = create_engine_for(get_settings())
        try:
            return await work(create_sessionmaker(engine))
        finally:
            await engine.dispose()

    try:
        return asyncio.run(_main())
    except DomainError as exc:
        fail(exc.detail)
        raise  # unreachable


def run_with_session(work: Callable[..., Awaitable[T]]) -> T:
    """Run `work(session)` in one unit of work on the configured database (same services as requests)."""
    from server.db.session import session_scope

    async def in_unit_of_work(sessionmaker: object) -> T:
        async with session_scope(sessionmaker) as session:  # type: ignore[arg-type]
            return await work(session)

    return run_with_sessionmaker(in_unit_of_work)


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
    campaign: Annotated[str | None, typer.Option("--campaign", "-c", help="Campaign slug to join")] = None,
    role: Annotated[str, typer.Option("--role", help="admin, organiser, lead or canvasser")] = "canvasser",
) -> None:
    """Create a user (optionally a superuser, optionally with a role in a campaign)."""
    from sqlalchemy import select

    from server.accounts.security import build_jwt_auth
    from server.accounts.services import AccountService
    from server.db.models import Campaign, Role

    if role not in Role.__members__:
        fail(f"unknown role {role!r}; choose one of {', '.join(Role.__members__)}")
    from server.accounts.passwords import password_problem

    if problem := password_problem(password, email):
        fail(f"password refused: {problem}")

    async def work(session: object) -> str:
        settings = get_settings()
        accounts = AccountService(session, settings, build_jwt_auth(settings.secret_key, 15))  # type: ignore[arg-type]
        if await _user_by_email(session, email) is not None:
            fail(f"a user with email {email.strip().lower()} already exists; to give them a role in a campaign use "
                 f"`canvass users add {email.strip().lower()} --campaign SLUG --role ROLE`")
        user = await accounts.create_user(email, name or email.split("@")[0], password, is_superuser=superuser)
        if campaign:
            found = await session.scalar(select(Campaign).where(Campaign.slug == campaign))  # type: ignore[attr-defined]
            if found is None:
                fail(f"no campaign with slug {campaign!r}")
            await accounts.add_member(user, found.id, Role(role))
        return f"created user {user.id} <{user.email}>"

    typer.echo(run_with_session(work))


@users_app.command("add")
def users_add(
    email: str,
    campaign: Annotated[str, typer.Option("--campaign", "-c", help="Campaign slug or id")],
    role: Annotated[str, typer.Option("--role", help="admin, organiser, lead or canvasser")] = "canvasser",
) -> None:
    """Give an existing user a role in a campaign (or change their role there)."""
    from server.accounts.security import build_jwt_auth
    from server.accounts.services import AccountService
    from server.db.models import Role

    if role not in Role.__members__:
        fail(f"unknown role {role!r}; choose one of {', '.join(Role.__members__)}")

    async def work(session: object) -> str:
        settings = get_settings()
        campaign_id = await _campaign_id(session, campaign)
        user = await _user_by_email(session, email)
        if user is None:
            fail(f"no user with email {email.strip().lower()}; create one with `canvass users create {email.strip().lower()}`")
        accounts = AccountService(session, settings, build_jwt_auth(settings.secret_key, 15))  # type: ignore[arg-type]
        await accounts.add_member(user, campaign_id, Role(role))
        return f"{user.email} is now {role} in campaign {campaign}"

    typer.echo(run_with_session(work))


async def _user_by_email(session: object, email: str) -> object | None:
    """A user by email (case-insensitive), or None."""
    from sqlalchemy import select

    from server.db.models import User

    return await session.scalar(select(User).where(User.email == email.strip().lower()))  # type: ignore[attr-defined]


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


@app.command("phone-link")
def phone_link(
    port: Annotated[int, typer.Option(help="The port `canvass serve` listens on")] = 8000,
    host: Annotated[str, typer.Option(help="Address phones reach this machine at (default: its LAN address)")] = "",
) -> None:
    """Print a join link of the demo campaign for a phone on the same network (the canvasser app)."""
    from server.phone.demo_link import demo_join_link, lan_address

    address = host or lan_address()
    link = run_with_session(lambda session: demo_join_link(session, get_settings(), address, port))
    typer.echo(f"canvasser app: open {link} on a phone on this network (serve with HOST=0.0.0.0 so phones can reach it)")


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
    path: Path, campaign: CampaignOption,
    vintage: Annotated[int | None, typer.Option(help="Census year of the areas (default: from the code field, e.g. LSOA21CD is 2021; else 2011)")] = None,
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
    fmt: Annotated[str | None, typer.Option("--format", help="osm, codepoint or csv (default: told from the file)")] = None,
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


# ------------------------------------------------------------------ the organiser's flow: rank, target, cut, assign, export

MeasureOption = Annotated[str, typer.Option("--measure", "-m", help="A preset (bame_share, asian_share, ...) or a formula such as '(bangladeshi + pakistani) / total'")]
KindOption = Annotated[str | None, typer.Option("--kind", help="Area kind to rank: OA, LSOA, MSOA, ward (default: the finest with census counts)")]
AsOption = Annotated[str | None, typer.Option("--as", help="Email of the organiser doing this (recorded in the audit log; default: the command line)")]


def _progress() -> object:
    """A transient rich progress bar on stderr (stdout stays clean for the result)."""
    from rich.console import Console
    from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    return Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                    TimeElapsedColumn(), transient=True, console=Console(stderr=True))


async def _actor(session: object, campaign_id: int, email: str | None) -> object:
    """Who a command acts as: the named member (their roles, for the audit log), else the command line itself (an admin's shell)."""
    from sqlalchemy import select

    from server.accounts.security import AuthUser
    from server.db.models import Membership, Role

    if email is None:
        return AuthUser(id=None, email="", display_name="command line", is_superuser=True)  # type: ignore[arg-type]
    user = await _user_by_email(session, email)
    if user is None:
        fail(f"no user with email {email}")
    roles = dict((await session.execute(select(Membership.campaign_id, Membership.role).where(Membership.user_id == user.id))).all())  # type: ignore[attr-defined]
    if not user.is_superuser and roles.get(campaign_id) not in (Role.admin, Role.organiser):  # type: ignore[attr-defined]
        fail(f"{email} is not an organiser or admin of this campaign")
    return AuthUser(id=user.id, email=user.email, display_name=user.display_name, is_superuser=user.is_superuser, roles=roles)  # type: ignore[attr-defined]


async def _area_kind(session: object, campaign_id: int, kind: str | None) -> str:
    """The kind of area to rank: the one asked for, else the campaign's finest with census counts (OA, else LSOA, ...)."""
    from server.targeting.services import finest_counted_geography

    if kind:
        return kind
    finest = await finest_counted_geography(session, campaign_id)  # type: ignore[arg-type]
    return finest[0] if finest else "OA"


async def _target_id(session: object, campaign_id: int, ref: str) -> int:
    """A target of the campaign by id or by name."""
    from sqlalchemy import select

    from server.db.models import Target

    query = select(Target.id).where(Target.campaign_id == campaign_id)
    query = query.where(Target.id == int(ref)) if ref.isdigit() else query.where(Target.name == ref).order_by(Target.id.desc())
    found = (await session.scalars(query)).first()  # type: ignore[attr-defined]
    if found is None:
        fail(f"no target {ref!r} in this campaign (give its id or name; `canvass target` makes one)")
    return int(found)


@app.command("rank")
def rank_cmd(
    campaign: CampaignOption,
    measure: MeasureOption = "bame_share",
    kind: KindOption = None,
    threshold: Annotated[float | None, typer.Option(help="Only areas whose value is at least this")] = None,
    top: Annotated[int | None, typer.Option("--top", help="Only the top N areas")] = None,
    min_population: Annotated[int | None, typer.Option(help="Leave out areas with fewer residents")] = None,
    geojson: Annotated[Path | None, typer.Option("--geojson", help="Also write the ranked areas as GeoJSON here")] = None,
) -> None:
    """Rank the campaign's areas by a census measure (the same ranking as the console's)."""
    import msgspec

    from server.targeting.services import rank_campaign_areas

    async def work(session: object) -> tuple[str, object]:
        campaign_id = await _campaign_id(session, campaign)
        area_kind = await _area_kind(session, campaign_id, kind)
        with _progress() as bar:  # type: ignore[attr-defined]
            bar.add_task(f"ranking {area_kind}s by {measure}", total=None)
            return area_kind, await rank_campaign_areas(session, campaign_id, measure=measure, kind=area_kind, threshold=threshold,  # type: ignore[arg-type]
                                                        top_n=top, min_population=min_population)

    area_kind, ranking = run_with_session(work)
    typer.echo(f"ranked {ranking.count} {area_kind}s by {ranking.measure} = {ranking.formula}")  # type: ignore[attr-defined]
    typer.echo(f"{'rank':>4}  {'code':<10} {'value':>8} {'population':>10}  name")
    for feature in ranking.features:  # type: ignore[attr-defined]
        p = feature["properties"]
        typer.echo(f"{p['rank']:>4}  {p['code']:<10} {p['value']:>8.4f} {p['population']:>10}  {p.get('name') or ''}")
    if geojson is not None:
        geojson.write_bytes(msgspec.json.encode(ranking))
        typer.echo(f"wrote {geojson}")


def _polygon_from_file(path: Path) -> dict[str, object]:
    """The union of the polygons in a GeoJSON (or any GDAL vector) file, as WGS84 GeoJSON."""
    import geopandas as gpd
    import shapely
    from shapely.geometry import mapping

    if not path.exists():
        fail(f"no such file: {path}")
    try:
        frame = gpd.read_file(path, engine="pyogrio")
    except Exception as exc:  # GDAL names the problem; one line is all the organiser needs
        fail(f"cannot read a polygon from {path.name}: {exc}")
    if frame.empty:
        fail(f"{path.name} has no features")
    if frame.crs is not None and frame.crs.to_epsg() != 4326:
        frame = frame.to_crs("EPSG:4326")
    return dict(mapping(shapely.union_all(frame.geometry.to_numpy())))


@app.command("target")
def target_cmd(
    name: str,
    campaign: CampaignOption,
    top: Annotated[int | None, typer.Option("--top", help="The top N areas by the measure")] = None,
    threshold: Annotated[float | None, typer.Option(help="Every area whose measure is at least this")] = None,
    polygon: Annotated[Path | None, typer.Option("--polygon", help="A GeoJSON file with the area to knock (any CRS)")] = None,
    measure: MeasureOption = "bame_share",
    kind: KindOption = None,
    min_population: Annotated[int | None, typer.Option(help="Leave out areas with fewer residents")] = None,
) -> None:
    """Make a target from the top N areas, from areas over a threshold, or from a drawn polygon (with areas: their intersection)."""
    from server.targeting.schemas import TargetCreate
    from server.targeting.services import create_target, rank_campaign_areas

    if top is None and threshold is None and polygon is None:
        fail("say which doors to target: --top N, --threshold X (areas by --measure) or --polygon FILE.geojson")
    drawn = _polygon_from_file(polygon) if polygon is not None else None

    async def work(session: object) -> object:
        campaign_id = await _campaign_id(session, campaign)
        with _progress() as bar:  # type: ignore[attr-defined]
            task = bar.add_task("choosing areas", total=None)
            codes = None
            if top is not None or threshold is not None:
                area_kind = await _area_kind(session, campaign_id, kind)
                ranking = await rank_campaign_areas(session, campaign_id, measure=measure, kind=area_kind, threshold=threshold,  # type: ignore[arg-type]
                                                    top_n=top, min_population=min_population)
                codes = [f["properties"]["code"] for f in ranking.features]
                if not codes:
                    fail(f"no {area_kind} reaches {measure} >= {threshold}: nothing to target")
            bar.update(task, description="previewing the target")
            data = TargetCreate(name=name, polygon=drawn, area_codes=codes, measure=measure if codes else None, threshold=threshold)
            return await create_target(session, campaign_id, data, None, get_settings())  # type: ignore[arg-type]

    target = run_with_session(work)
    preview = target.preview  # type: ignore[attr-defined]
    residents = ", ".join(f"{k} ~{v:,.0f}" for k, v in preview.estimated_residents.items())
    areas = len(target.rule.get("area_codes") or [])  # type: ignore[attr-defined]
    typer.echo(f"target {target.id} {target.name!r}: {preview.addresses} doors in {preview.buildings} buildings, "  # type: ignore[attr-defined]
               f"{preview.electors} electors, {preview.area_km2} km2" + (f", {areas} areas" if areas else "") + (f"; residents {residents}" if residents else ""))


@app.command("cut")
def cut_cmd(
    campaign: CampaignOption,
    targets: Annotated[list[str] | None, typer.Argument(help="Target ids or names (or --all)")] = None,
    size: Annotated[int, typer.Option(min=1, max=500, help="Doors (or minutes) per list")] = 50,
    unit: Annotated[str, typer.Option(help="doors or minutes")] = "doors",
    replace: Annotated[bool, typer.Option(help="Delete the targets' unassigned lists first")] = False,
    every: Annotated[bool, typer.Option("--all", help="Every target of the campaign")] = False,
    by: Annotated[str | None, typer.Option("--by", help="Split targets by the campaign's areas of this kind (ward, constituency, LSOA, ...); lists never cross their edges")] = None,
    dask: Annotated[bool, typer.Option("--dask", help="Cut the partitions on dask.distributed (CANVASS_DASK_SCHEDULER, else a LocalCluster)")] = False,
    workers: Annotated[int | None, typer.Option("--workers", min=1, help="LocalCluster size (default CANVASS_DASK_WORKERS, else one per core)")] = None,
) -> None:
    """Cut targets into balanced, routed walk lists (the same cut as the console's); many at once with --all, --by and --dask."""
    from server.walklists import services
    from server.walklists.schemas import CutRequest

    if unit not in ("doors", "minutes"):
        fail(f"unknown unit {unit!r}; use doors or minutes")
    if not targets and not every:
        fail("name the targets to cut (ids or names), or give --all")
    request = CutRequest(size=size, unit=unit, replace=replace)  # type: ignore[arg-type]
    national = every or by is not None or dask or len(targets or []) > 1

    async def work(sessionmaker: object) -> list[object]:
        from server.walklists.national import all_target_ids, dask_client, national_cut

        async with sessionmaker() as session:  # type: ignore[operator]
            campaign_id = await _campaign_id(session, campaign)
            target_ids = await all_target_ids(session, campaign_id) if every else [await _target_id(session, campaign_id, t) for t in targets or []]
        if not target_ids:
            fail("the campaign has no targets; make one with `canvass target`")
        with _progress() as bar:  # type: ignore[attr-defined]
            if not national:
                task = bar.add_task("cutting and routing", total=None)
                lists = await services.run_cut(sessionmaker, campaign_id, target_ids[0], request,
                                               lambda done, total: bar.update(task, completed=done, total=total))
            else:
                task = bar.add_task(f"cutting {len(target_ids)} targets" + (f" by {by}" if by else ""), total=None)

                def progress(done: int, total: int, doors: int) -> None:
                    bar.update(task, completed=done, total=total, description=f"partitions cut, {doors:,} doors on lists")

                settings = get_settings()
                if dask:
                    async with dask_client(settings, workers) as client:
                        result = await national_cut(sessionmaker, campaign_id, target_ids, request, by, client, progress)
                else:
                    result = await national_cut(sessionmaker, campaign_id, target_ids, request, by, None, progress)
                for name, reason in result.failed.items():
                    typer.echo(f"warning: {name} not cut: {reason}", err=True)
                lists = result.lists
        async with sessionmaker() as session:  # type: ignore[operator]
            return await services.list_outs(session, campaign_id, [w.id for w in lists])  # type: ignore[return-value]

    outs = run_with_sessionmaker(work)
    routings = sorted({o.routing for o in outs if o.routing})  # type: ignore[attr-defined]
    typer.echo(f"cut {len(outs)} lists, {sum(o.doors for o in outs)} doors, routing: {', '.join(routings) or None}")  # type: ignore[attr-defined]
    typer.echo(f"{'id':>5}  {'doors':>5} {'stops':>5} {'minutes':>7}  name")
    for out in outs:
        note = f"  ({out.size_exception})" if out.size_exception else ""  # type: ignore[attr-defined]
        typer.echo(f"{out.id:>5}  {out.doors:>5} {out.stops:>5} {out.minutes:>7.0f}  {out.name}{note}")  # type: ignore[attr-defined]
    for routing in routings:
        for warning in services.routing_warnings(routing):
            typer.echo(f"warning: {warning}", err=True)


@app.command("lists")
def lists_cmd(
    campaign: CampaignOption,
    target: Annotated[str | None, typer.Option("--target", help="Only this target's lists (id or name)")] = None,
) -> None:
    """Show the campaign's walk lists: id, doors, routing, who holds each."""
    from server.walklists import services

    async def work(session: object) -> list[object]:
        campaign_id = await _campaign_id(session, campaign)
        target_id = await _target_id(session, campaign_id, target) if target else None
        outs = await services.list_outs(session, campaign_id)  # type: ignore[arg-type]
        return [o for o in outs if target_id is None or o.target_id == target_id]

    outs = run_with_session(work)
    typer.echo(f"{'id':>5}  {'doors':>5} {'minutes':>7}  {'routing':<14} {'held by':<20} name")
    for out in outs:
        holder = out.assignee.display_name if out.assignee else "-"  # type: ignore[attr-defined]
        typer.echo(f"{out.id:>5}  {out.doors:>5} {out.minutes:>7.0f}  {out.routing or '-':<14} {holder:<20} {out.name}")  # type: ignore[attr-defined]


@app.command("assign")
def assign_cmd(
    lists: Annotated[list[int], typer.Argument(help="Walk list ids")],
    campaign: CampaignOption,
    to: Annotated[str | None, typer.Option("--to", help="Email of the canvasser (a member of the campaign)")] = None,
    team: Annotated[str | None, typer.Option("--team", help="A team (id or name): each of its members holds the lists")] = None,
    unassign: Annotated[bool, typer.Option("--unassign", help="Take the lists back instead")] = False,
    actor_email: AsOption = None,
) -> None:
    """Assign walk lists to a campaign member or a team (phones get them on their next sync), or take them back."""
    from server.walklists import services

    if sum((to is not None, team is not None, unassign)) != 1:
        fail("give --to EMAIL or --team TEAM to assign, or --unassign to take the lists back")

    async def work(session: object) -> list[str]:
        from sqlalchemy import select

        from server.db.models import Team

        campaign_id = await _campaign_id(session, campaign)
        actor = await _actor(session, campaign_id, actor_email)
        done = []
        if unassign:
            for list_id in lists:
                await services.unassign_list(session, campaign_id, list_id)  # type: ignore[arg-type]
                done.append(f"list {list_id} taken back")
            return done
        if team is not None:
            query = select(Team).where(Team.campaign_id == campaign_id)
            query = query.where(Team.id == int(team)) if team.isdigit() else query.where(Team.name == team)
            found = (await session.scalars(query)).first()  # type: ignore[attr-defined]
            if found is None:
                fail(f"no team {team!r} in this campaign; make one in the console's Volunteers view or with POST /teams")
            for list_id in lists:
                out = await services.assign_list_to_team(session, actor, campaign_id, list_id, found.id)  # type: ignore[arg-type]
                done.append(f"list {out.id} {out.name!r} ({out.doors} doors) -> team {found.name} ({out.team.members if out.team else 0} members)")
            return done
        user = await _user_by_email(session, to or "")
        if user is None:
            fail(f"no user with email {to}; add one with `canvass users create` and `canvass users add`")
        for list_id in lists:
            out = await services.assign_list(session, actor, campaign_id, list_id, user.id)  # type: ignore[arg-type,attr-defined]
            done.append(f"list {out.id} {out.name!r} ({out.doors} doors) -> {user.display_name} <{user.email}>")  # type: ignore[attr-defined]
        return done

    for line in run_with_session(work):
        typer.echo(line)


EXPORT_FORMATS = ("pdf", "csv", "geojson", "gpx")


@app.command("export")
def export_cmd(
    campaign: CampaignOption,
    lists: Annotated[list[int] | None, typer.Argument(help="Walk list ids (or --target for all of a target's lists)")] = None,
    fmt: Annotated[str, typer.Option("--format", "-f", help="pdf (walk sheet), csv, geojson or gpx")] = "pdf",
    output: Annotated[Path, typer.Option("--output", "-o", help="Folder to write walk-list-ID.FORMAT files into")] = Path("."),
    target: Annotated[str | None, typer.Option("--target", help="Every list of this target (id or name)")] = None,
    actor_email: AsOption = None,
) -> None:
    """Export walk lists as printable PDF walk sheets, CSV, GeoJSON or GPX (each export is audited)."""
    from server.walklists import services

    if fmt not in EXPORT_FORMATS:
        fail(f"unknown export format {fmt!r}; use one of {', '.join(EXPORT_FORMATS)}")
    if not lists and not target:
        fail("name the lists to export (ids) or give --target")
    settings = get_settings()

    async def work(session: object) -> list[Path]:
        campaign_id = await _campaign_id(session, campaign)
        actor = await _actor(session, campaign_id, actor_email)
        ids = list(lists or [])
        if target:
            target_id = await _target_id(session, campaign_id, target)
            ids += [o.id for o in await services.list_outs(session, campaign_id) if o.target_id == target_id]  # type: ignore[arg-type]
        output.mkdir(parents=True, exist_ok=True)
        written = []
        with _progress() as bar:  # type: ignore[attr-defined]
            task = bar.add_task(f"exporting {fmt}", total=len(ids))
            for list_id in ids:
                path = output / f"walk-list-{list_id}.{fmt}"
                if fmt == "pdf":
                    path.write_bytes(await services.export_pdf(session, actor, campaign_id, list_id, settings.public_url))  # type: ignore[arg-type]
                elif fmt == "csv":
                    path.write_text(await services.export_csv(session, actor, campaign_id, list_id))  # type: ignore[arg-type]
                elif fmt == "geojson":
                    path.write_text(services.json_dumps(await services.export_geojson(session, actor, campaign_id, list_id)))  # type: ignore[arg-type]
                else:
                    path.write_text(await services.export_gpx(session, actor, campaign_id, list_id))  # type: ignore[arg-type]
                written.append(path)
                bar.advance(task)
        return written

    for path in run_with_session(work):
        typer.echo(f"wrote {path}")


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


@app.command("worker")
def worker_cmd() -> None:
    """Run background jobs (walk-list cuts) from the PostgreSQL queue until stopped; run one or more beside `canvass serve`."""
    from server.jobs import opened_queue, run_worker

    settings = get_settings()
    if settings.is_sqlite:
        fail("the job worker needs PostgreSQL (CANVASS_DATABASE_URL); on SQLite jobs run inside `canvass serve`")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    async def work(sessionmaker: object) -> None:
        async with opened_queue(settings) as queue:
            typer.echo(f"job worker on {_redact(settings.database_url)} (stalled after {settings.job_stalled_seconds}s, {settings.job_attempts} attempts)")
            await run_worker(settings, sessionmaker, queue)

    run_with_sessionmaker(work)


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
    # Logging is the app's (server.observability: JSON lines with a request id); uvicorn's access
    # line is off, since it carries the client's address and query string. Behind a balancer, the
    # client's address comes from X-Forwarded-For when the balancer is in FORWARDED_ALLOW_IPS
    # (uvicorn's variable; 127.0.0.1 by default).
    uvicorn.run(
        "server.app:app_factory", factory=True, host=host, port=port, workers=workers, reload=reload,
        log_level="info", log_config=None, access_log=False,
    )


@surveys_app.command("list")
def surveys_list(campaign: CampaignOption) -> None:
    """Every version of the campaign's surveys: id, name, version, status."""
    from server.surveys.services import list_surveys

    async def work(session: object) -> list[object]:
        return await list_surveys(session, await _campaign_id(session, campaign))  # type: ignore[arg-type,return-value]

    for out in run_with_session(work):
        active = "  (phones use this)" if out.is_active else ""  # type: ignore[attr-defined]
        typer.echo(f"{out.id:>5}  {out.name}  v{out.version}  {out.status}  {len(out.questions)} questions{active}")  # type: ignore[attr-defined]


@surveys_app.command("export")
def surveys_export(
    campaign: CampaignOption,
    survey: Annotated[str | None, typer.Option("--survey", "-s", help="Survey id or name (default: the published version phones use)")] = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="File to write (.yaml, .yml or .json); default: standard output")] = None,
    fmt: Annotated[str | None, typer.Option("--format", help="yaml or json (default: from --out's extension, else yaml)")] = None,
) -> None:
    """Write a survey version (questions, script, outcome codes, translations) to a file that `canvass surveys import` reads."""
    from server.surveys.services import find_version, write_survey_file

    chosen = fmt or ("json" if out is not None and out.suffix.lower() == ".json" else "yaml")
    if chosen not in ("yaml", "json"):
        fail(f"unknown format {chosen!r}: use yaml or json")

    async def work(session: object) -> str:
        row = await find_version(session, await _campaign_id(session, campaign), survey)  # type: ignore[arg-type]
        return write_survey_file(row, chosen)

    text = run_with_session(work)
    if out is None:
        typer.echo(text, nl=False)
    else:
        out.write_text(text, encoding="utf-8")
        typer.echo(f"wrote {out}")


@surveys_app.command("import")
def surveys_import(
    path: Annotated[Path, typer.Argument(help="A survey file (.yaml, .yml or .json), as `canvass surveys export` writes")],
    campaign: CampaignOption,
    publish: Annotated[bool, typer.Option("--publish", help="Publish the imported draft at once (phones get it on their next sync)")] = False,
    acting: AsOption = None,
) -> None:
    """Import a survey file as a new draft (the next version if the name exists); special category questions are refused."""
    from server.surveys import services

    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        fail(f"cannot read {path}: {exc.strerror if isinstance(exc, OSError) and exc.strerror else exc}")
    from server.errors import DomainError

    try:
        body = services.read_survey_file(text, path.name)
    except DomainError as exc:
        fail(exc.detail)

    async def work(session: object) -> object:
        campaign_id = await _campaign_id(session, campaign)
        user = await _actor(session, campaign_id, acting)
        made = await services.create_draft(session, campaign_id, body, user)  # type: ignore[arg-type]
        if publish:
            made = await services.publish(session, campaign_id, made.id, user)  # type: ignore[arg-type]
        return made

    made = run_with_session(work)
    typer.echo(f"survey {made.id}: {made.name} v{made.version} {made.status}, {len(made.questions)} questions")  # type: ignore[attr-defined]


def _redact(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def main() -> None:
    """Console-script entry point: usage mistakes and unexpected errors become one line on stderr and a non-zero exit."""
    import os

    from typer.exceptions import TyperException

    try:
        code = app(standalone_mode=False)
        sys.exit(code if isinstance(code, int) else 0)
    except TyperException as exc:  # a usage mistake (typer's click): one line instead of a panel
        message = exc.format_message()  # type: ignore[attr-defined]
        if message:
            ctx = getattr(exc, "ctx", None)
            typer.echo(f"error: {message} (see `{ctx.command_path if ctx else 'canvass'} --help`)", err=True)
        sys.exit(getattr(exc, "exit_code", 2))
    except typer.Abort:
        typer.echo("error: aborted", err=True)
        sys.exit(1)
    except Exception as exc:
        if os.environ.get("CANVASS_DEBUG"):
            raise
        typer.echo(f"error: {exc.__class__.__name__}: {exc}", err=True)
        sys.exit(1)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
