"""The `canvass` command line: serve, migrate, manage users, load the demo (and, later, importers).

Errors print one line to stderr and exit non-zero; long work shows progress.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from typing import Annotated, TypeVar

import typer

from server.settings import get_settings

T = TypeVar("T")

app = typer.Typer(help="Canvass: door-to-door canvassing backend.", no_args_is_help=True, pretty_exceptions_enable=False)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
users_app = typer.Typer(help="User accounts.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(users_app, name="users")


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
    """Console-script entry point."""
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
