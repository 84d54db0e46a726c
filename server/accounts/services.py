"""Accounts: sign-in with lockout, token issue and rotation, devices, join codes, user creation."""

from __future__ import annotations

import secrets
import uuid
from datetime import UTC, datetime, timedelta

from litestar.security.jwt import JWTAuth
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from server.accounts.passwords import check_new_password
from server.accounts.schemas import DeviceToken, TokenPair
from server.accounts.security import AuthUser, hash_password, token_digest, verify_password
from server.accounts.throttle import SignInThrottle
from server.db.models import (
    Campaign,
    Device,
    JoinCode,
    Membership,
    RefreshToken,
    RevokedAccessToken,
    Role,
    User,
)
from server.errors import (
    ConflictError,
    Forbidden,
    InvalidInput,
    NotFound,
    TooManyRequests,
    Unauthenticated,
)
from server.settings import Settings

JOIN_CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: typed on phones


def join_code_qr_svg(url: str) -> str:
    """A QR code of a join link as an SVG document (black modules on white, a quiet zone of 4)."""
    import qrcode
    import qrcode.image.svg

    image = qrcode.make(url, image_factory=qrcode.image.svg.SvgPathFillImage, border=4)
    return image.to_string(encoding="unicode")


def _now() -> datetime:
    return datetime.now(UTC)


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


class AccountService:
    """Everything about who can sign in and as what; used by handlers and the CLI alike."""

    def __init__(self, session: AsyncSession, settings: Settings, jwt_auth: JWTAuth, throttle: SignInThrottle | None = None) -> None:  # type: ignore[type-arg]
        self.session = session
        self.settings = settings
        self.jwt_auth = jwt_auth
        self.throttle = throttle

    # ------------------------------------------------------------ users

    async def create_user(
        self, email: str, display_name: str, password: str | None, *, is_superuser: bool = False
    ) -> User:
        """Create a user; a duplicate email is a 409."""
        email = email.strip().lower()
        if await self.session.scalar(select(User.id).where(User.email == email)) is not None:
            raise ConflictError(f"A user with email {email} already exists.")
        user = User(
            email=email,
            display_name=display_name.strip(),
            password_hash=hash_password(password) if password else None,
            is_superuser=is_superuser,
        )
        self.session.add(user)
        await self.session.flush()
        return user

    async def add_member(self, user: User, campaign_id: int, role: Role) -> Membership:
        """Give a user a role in a campaign (replacing any earlier role there)."""
        existing = await self.session.scalar(
            select(Membership).where(Membership.user_id == user.id, Membership.campaign_id == campaign_id)
        )
        if existing is not None:
            existing.role = role
            return existing
        membership = Membership(user_id=user.id, campaign_id=campaign_id, role=role)
        self.session.add(membership)
        await self.session.flush()
        return membership

    async def create_campaign_user(
        self, actor: AuthUser, campaign_id: int, email: str, display_name: str, password: str, role: Role
    ) -> User:
        """An organiser creates canvassers; only admins create organisers, leads and admins."""
        actor_role = actor.role_in(campaign_id)
        if role != Role.canvasser and not (actor.is_superuser or actor_role == Role.admin):
            raise Forbidden("Only a campaign admin may create accounts with that role.")
        check_new_password(password, email)
        user = await self.create_user(email, display_name, password)
        await self.add_member(user, campaign_id, role)
        return user

    # ------------------------------------------------------------ sign-in and tokens

    async def sign_in(self, email: str, password: str, address: str = "") -> TokenPair:
        """Check a password (unknown accounts cost and answer the same), with backoff per (account, address); then issue tokens."""
        throttle = self.throttle
        wait = await throttle.retry_after(email, address) if throttle else 0
        if wait:
            raise TooManyRequests(f"Too many failed sign-ins from here; try again in {wait} seconds.", retry_after=wait)
        user = await self.session.scalar(select(User).where(User.email == email.strip().lower()))
        matched = verify_password(user.password_hash if user else None, password)
        if user is None or not user.is_active or not matched:
            if throttle:
                await throttle.failed(email, address)
            raise Unauthenticated("Wrong email or password.")
        if throttle:
            await throttle.succeeded(email, address)
        return await self.issue_tokens(user, family=uuid.uuid4().hex)

    async def issue_tokens(self, user: User, *, family: str) -> TokenPair:
        """A new access token and a new refresh token in the given rotation family."""
        access = self.jwt_auth.create_token(
            identifier=str(user.id),
            token_expiration=timedelta(minutes=self.settings.access_token_minutes),
            token_unique_jwt_id=uuid.uuid4().hex,
            token_extras={"fam": family},  # revoking the family revokes this token (retrieve_user checks it)
        )
        refresh = secrets.token_urlsafe(32)
        self.session.add(
            RefreshToken(
                user_id=user.id,
                token_hash=token_digest(refresh),
                family=family,
                expires_at=_now() + timedelta(days=self.settings.refresh_token_days),
            )
        )
        await self.session.flush()
        return TokenPair(
            access_token=access,
            refresh_token=refresh,
            expires_in=self.settings.access_token_minutes * 60,
            user_id=user.id,
        )

    async def refresh(self, refresh_token: str) -> TokenPair:
        """Rotate: spend the refresh token and issue a new pair; reuse of a spent one revokes the family."""
        row = await self.session.scalar(select(RefreshToken).where(RefreshToken.token_hash == token_digest(refresh_token)))
        now = _now()
        if row is None or row.revoked_at is not None or _aware(row.expires_at) <= now:
            raise Unauthenticated("The refresh token is not valid; sign in again.")
        if row.used_at is not None:
            await self.session.execute(
                update(RefreshToken).where(RefreshToken.family == row.family).values(revoked_at=now)
            )
            await self.session.commit()
            raise Unauthenticated("The refresh token was already used; every session of this sign-in is revoked.")
        row.used_at = now
        user = await self.session.get(User, row.user_id)
        if user is None or not user.is_active:
            raise Unauthenticated("The account is disabled.")
        return await self.issue_tokens(user, family=row.family)

    async def sign_out(self, actor: AuthUser, refresh_token: str | None) -> None:
        """Revoke the current access token and, if given, its refresh family."""
        if actor.token_jti:
            self.session.add(
                RevokedAccessToken(jti=actor.token_jti, expires_at=_now() + timedelta(minutes=self.settings.access_token_minutes))
            )
        if refresh_token:
            row = await self.session.scalar(select(RefreshToken).where(RefreshToken.token_hash == token_digest(refresh_token)))
            if row is not None and row.user_id == actor.id:
                await self.session.execute(
                    update(RefreshToken).where(RefreshToken.family == row.family).values(revoked_at=_now())
                )

    # ------------------------------------------------------------ devices

    async def register_device(self, actor: AuthUser, campaign_id: int, name: str, node_id: str | None = None) -> DeviceToken:
        """Register a phone; its token works for sync until the device is revoked.

        ``node_id`` is the install's HLC node (sync contract A): the same user signing in
        again with it in the same campaign re-activates that device row (receipt kept, so its
        queue is accepted) and revokes the tokens issued before; another user's node id is a 409.
        """
        if actor.device_id is not None:
            raise Forbidden("A device cannot register another device.")
        device = None
        if node_id is not None:
            device = await self.session.scalar(select(Device).where(Device.node_id == node_id).with_for_update())
            if device is not None and (device.user_id != actor.id or device.campaign_id != campaign_id):
                raise ConflictError("This node id belongs to another device; generate a new one.")
        if device is None:
            device = Device(user_id=actor.id, campaign_id=campaign_id, name=name, node_id=node_id or uuid.uuid4().hex[:16])
            self.session.add(device)
        else:
            if device.token_jti is not None:
                self.session.add(RevokedAccessToken(
                    jti=device.token_jti, expires_at=_now() + timedelta(days=self.settings.device_token_days)
                ))
            device.revoked_at = None
            device.name = name
        jti = uuid.uuid4().hex
        device.token_jti = jti
        await self.session.flush()
        token = self.jwt_auth.create_token(
            identifier=str(actor.id),
            token_expiration=timedelta(days=self.settings.device_token_days),
            token_unique_jwt_id=jti,
            token_extras={"dev": device.id},
        )
        return DeviceToken(device_id=device.id, node_id=device.node_id, token=token, campaign_id=campaign_id)

    async def revoke_device(self, actor: AuthUser, campaign_id: int, device_id: int) -> None:
        """Revoke a device: its owner, or an organiser/admin of the campaign."""
        device = await self.session.get(Device, device_id)
        if device is None or device.campaign_id != campaign_id:
            raise NotFound(f"No device {device_id} in this campaign.")
        role = actor.role_in(campaign_id)
        if device.user_id != actor.id and not (actor.is_superuser or role in (Role.admin, Role.organiser)):
            raise Forbidden("Only the device's owner or an organiser may revoke it.")
        device.revoked_at = _now()

    # ------------------------------------------------------------ join codes

    async def create_join_code(self, actor: AuthUser, campaign_id: int, hours_valid: int, max_uses: int) -> JoinCode:
        """A short random code volunteers type or scan to join as canvassers."""
        for _attempt in range(5):
            code = "".join(secrets.choice(JOIN_CODE_ALPHABET) for _ in range(8))
            if await self.session.scalar(select(JoinCode.id).where(JoinCode.code == code)) is None:
                break
        join = JoinCode(
            campaign_id=campaign_id,
            code=code,
            role=Role.canvasser,
            created_by=actor.id,
            expires_at=_now() + timedelta(hours=hours_valid),
            max_uses=max_uses,
        )
        self.session.add(join)
        await self.session.flush()
        return join

    async def join_codes(self, campaign_id: int) -> list[JoinCode]:
        """The campaign's join codes, newest first."""
        return list((await self.session.scalars(
            select(JoinCode).where(JoinCode.campaign_id == campaign_id).order_by(JoinCode.id.desc())
        )).all())

    async def join_code(self, campaign_id: int, join_code_id: int) -> JoinCode:
        """One join code of the campaign, or 404."""
        join = await self.session.get(JoinCode, join_code_id)
        if join is None or join.campaign_id != campaign_id:
            raise NotFound(f"No join code {join_code_id} in this campaign.")
        return join

    async def revoke_join_code(self, campaign_id: int, join_code_id: int) -> JoinCode:
        """Stop a join code working (volunteers who joined with it stay members)."""
        join = await self.join_code(campaign_id, join_code_id)
        join.revoked = True
        await self.session.flush()
        return join

    async def add_existing_member(self, actor: AuthUser, campaign_id: int, email: str, role: Role) -> tuple[User, Role]:
        """Give an existing account (perhaps a member of other campaigns) a role here.

        Organisers add canvassers; only admins give other roles or change a member's role.
        Adding someone already here with that role changes nothing.
        """
        user = await self.session.scalar(select(User).where(User.email == email.strip().lower()))
        if user is None:
            raise NotFound(f"No account with email {email.strip().lower()}: create one (or send a join link) instead.")
        may_grant = actor.is_superuser or actor.role_in(campaign_id) == Role.admin
        if role != Role.canvasser and not may_grant:
            raise Forbidden("Only a campaign admin may give that role.")
        current = await self.session.scalar(
            select(Membership).where(Membership.user_id == user.id, Membership.campaign_id == campaign_id)
        )
        if current is not None and current.role != role and not may_grant:
            raise ConflictError(f"{user.email} is already {current.role} in this campaign; only an admin may change that.")
        await self.add_member(user, campaign_id, role)
        return user, role

    async def redeem_join_code(self, code: str, display_name: str, email: str, password: str) -> None:
        """Join a campaign as a canvasser with a code; never reveals whether the address already has an account.

        A new address gets an account. For an existing one nothing is created or
        changed, unless the password is that account's: then (the owner proved
        it) the account joins the campaign. The caller answers the same in
        every case and signs nobody in: the volunteer signs in next.
        """
        check_new_password(password, email)  # before any look-up: the answer must not depend on the address
        join = await self.session.scalar(select(JoinCode).where(JoinCode.code == code.strip().upper()))
        if join is None or join.revoked or _aware(join.expires_at) <= _now() or join.uses >= join.max_uses:
            raise InvalidInput("That join code is not valid (wrong, expired or used up).", errors=[{"field": "code", "message": "invalid join code"}])
        campaign = await self.session.get(Campaign, join.campaign_id)
        if campaign is None:
            raise NotFound("The campaign for this join code no longer exists.")
        join.uses += 1
        existing = await self.session.scalar(select(User).where(User.email == email.strip().lower()))
        if existing is None:
            try:
                async with self.session.begin_nested():
                    user = await self.create_user(email, display_name, password)
            except (IntegrityError, ConflictError):  # the address was taken a moment ago: answer as for any taken one
                return
            await self.add_member(user, join.campaign_id, join.role)
            return
        proved = verify_password(existing.password_hash, password) and existing.is_active
        already = await self.session.scalar(
            select(Membership.id).where(Membership.user_id == existing.id, Membership.campaign_id == join.campaign_id)
        )
        if proved and already is None:
            await self.add_member(existing, join.campaign_id, join.role)
