"""Authentication: Litestar's JWT backend for access and device tokens, argon2 for passwords.

Access tokens are short-lived JWTs; refresh tokens are opaque, hashed and
rotated. A device token is a long-lived JWT naming a `devices` row: the row is
checked on every request, so revoking a device takes effect on the next call.
Roles are never in the token: they are read from `memberships` per request.
"""

from __future__ import annotations

import functools
import hashlib
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from litestar.connection import ASGIConnection
from litestar.security.jwt import JWTAuth, Token
from sqlalchemy import bindparam, literal, or_, select, update

from server.db.models import Device, Membership, RefreshToken, RevokedAccessToken, Role, User
from server.db.session import autocommit_session


def _make_hasher() -> PasswordHasher:
    """Argon2id with the library's RFC 9106 defaults; `CANVASS_ARGON2_PROFILE=test` makes it cheap for test suites only."""
    if os.environ.get("CANVASS_ARGON2_PROFILE") == "test":
        return PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    return PasswordHasher()


_hasher = _make_hasher()


def hash_password(password: str) -> str:
    """Argon2id hash of a password (the library's recommended parameters)."""
    return _hasher.hash(password)


@functools.cache
def _dummy_hash() -> str:
    """A hash of a random secret with the live parameters: unknown accounts are verified against it (same work, same answer)."""
    return _hasher.hash(os.urandom(32).hex())


def verify_password(password_hash: str | None, password: str) -> bool:
    """True when `password` matches; constant-time via argon2, and as slow for a missing hash (checked against a dummy)."""
    try:
        matched = _hasher.verify(password_hash or _dummy_hash(), password)
    except (VerificationError, InvalidHashError):
        return False
    return matched and bool(password_hash)


def token_digest(token: str) -> str:
    """SHA-256 of an opaque token; only digests are stored."""
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class AuthUser:
    """The authenticated caller as guards see it: identity plus server-held roles per campaign."""

    id: int
    email: str
    display_name: str
    is_superuser: bool
    roles: dict[int, Role] = field(default_factory=dict)
    device_id: int | None = None
    device_campaign_id: int | None = None
    device_node_id: str | None = None
    token_jti: str | None = None

    def role_in(self, campaign_id: int) -> Role | None:
        """The caller's role in a campaign, or None."""
        return self.roles.get(campaign_id)


async def retrieve_user(token: Token, connection: ASGIConnection[Any, Any, Any, Any]) -> AuthUser | None:
    """Load the user (and device, for device tokens) named by a verified token; None rejects it.

    Every request pays for this, phones' pushes included, so it is one query: the
    user, the token's revocation and the device in each row, one row per membership
    (outer join). On PostgreSQL it runs on an autocommit connection: a single read
    needs no BEGIN/ROLLBACK, which were two of its three round trips.
    Nothing is cached: a revoked token or device is refused on its next request.
    """
    jti = token.jti if isinstance(token.jti, str) else None
    raw_device = token.extras.get("dev")
    device_id = int(raw_device) if raw_device is not None else None
    family = token.extras.get("fam")
    family = family if isinstance(family, str) else None
    query = _auth_query(jti is not None, device_id is not None, family is not None)
    params = {"user_id": int(token.sub), "jti": jti, "device_id": device_id, "family": family}
    state = connection.app.state
    async with autocommit_session(state) as session:
        rows = (await session.execute(query, params)).all()
        row = rows[0] if rows else None
        if row is None or row.revoked or not row.is_active:
            return None
        device_campaign_id = node_id = None
        if device_id is not None:
            if row.device is None or row.device_revoked is not None or row.device_user != row.id:
                return None
            device_campaign_id, node_id = row.device_campaign, row.node_id
            now = datetime.now(UTC)
            if row.last_seen is None or (now - _aware(row.last_seen)).total_seconds() > 60:
                await session.execute(update(Device).where(Device.id == device_id).values(last_seen_at=now))
                await session.commit()
        return AuthUser(
            id=row.id,
            email=row.email,
            display_name=row.display_name,
            is_superuser=row.is_superuser,
            roles={r.member_of: r.role for r in rows if r.member_of is not None},
            device_id=device_id,
            device_campaign_id=device_campaign_id,
            device_node_id=node_id,
            token_jti=jti,
        )


@functools.cache
def _auth_query(with_jti: bool, with_device: bool, with_family: bool = False) -> Any:
    """The authentication query, built once per shape and run with parameters.

    An access token names its sign-in's refresh family (`fam`): once that family
    is revoked (a spent refresh token replayed, or sign-out) the token is too.
    """
    revoked: Any = (
        select(RevokedAccessToken.jti).where(RevokedAccessToken.jti == bindparam("jti")).exists()
        if with_jti
        else literal(False)
    )
    if with_family:
        family_revoked = (
            select(RefreshToken.id).where(RefreshToken.family == bindparam("family"), RefreshToken.revoked_at.is_not(None)).exists()
        )
        revoked = or_(revoked, family_revoked)
    columns: list[Any] = [
        User.id, User.email, User.display_name, User.is_superuser, User.is_active, revoked.label("revoked"),
        Membership.campaign_id.label("member_of"), Membership.role.label("role"),
    ]
    query = (
        select(*columns)
        .outerjoin(Membership, Membership.user_id == User.id)
        .where(User.id == bindparam("user_id"))
    )
    if with_device:
        query = query.add_columns(
            Device.id.label("device"), Device.user_id.label("device_user"), Device.campaign_id.label("device_campaign"),
            Device.node_id.label("node_id"), Device.revoked_at.label("device_revoked"), Device.last_seen_at.label("last_seen"),
        ).outerjoin(Device, Device.id == bindparam("device_id"))
    return query


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def build_jwt_auth(secret_key: str, access_minutes: int) -> JWTAuth[AuthUser, Token]:
    """Litestar's JWT bearer backend; handlers opt out with `opt={"exclude_from_auth": True}`."""
    from datetime import timedelta

    return JWTAuth[AuthUser, Token](
        token_secret=secret_key,
        retrieve_user_handler=retrieve_user,
        default_token_expiration=timedelta(minutes=access_minutes),
        exclude=["^/schema", "^/health$", "^/ready$", "^/console", "^/static", "^/$", "^/favicon"],
        require_claims=["exp", "sub"],
    )
