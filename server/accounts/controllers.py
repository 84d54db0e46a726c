"""HTTP handlers of the accounts domain: thin, typed, each calling AccountService."""

from __future__ import annotations

from typing import Any, TypeAlias

from litestar import Controller, Request, Response, delete, get, patch, post
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, JSONBody
from sqlalchemy import select

from server.accounts import teams
from server.accounts.guards import MEMBERS, ORGANISERS, REVIEWERS, require_role
from server.accounts.schemas import (
    DeviceCreate,
    DeviceOut,
    DeviceToken,
    JoinAccepted,
    JoinCodeCreate,
    JoinCodeOut,
    JoinRequest,
    LoginRequest,
    LogoutRequest,
    MemberAdd,
    MemberOut,
    MembershipOut,
    MeOut,
    RefreshRequest,
    TeamCreate,
    TeamMemberAdd,
    TeamOut,
    TeamUpdate,
    TokenPair,
    UserCreate,
)
from server.accounts.services import AccountService, join_code_qr_svg
from server.audit import record_audit
from server.console.refresh_cookie import (
    CookieMode,
    RefreshCookie,
    refresh_token_from,
    signed_out_response,
    token_response,
)
from server.db.models import Device, JoinCode, Membership, User
from server.dependencies import AppSettings, CurrentUser, DbSession
from server.errors import Unauthenticated


def provide_account_service(db_session: DbSession, state: State) -> AccountService:
    """AccountService bound to this request's session (and the app's sign-in throttle)."""
    return AccountService(db_session, state.settings, state.jwt_auth, state.get("sign_in_throttle"))


def client_address(request: Request[Any, Any, Any]) -> str:
    """The caller's network address as the ASGI server reports it (run behind a proxy with --proxy-headers)."""
    return request.client.host if request.client else ""


Accounts: TypeAlias = NamedDependency[AccountService]


class AuthController(Controller):
    """Sign-in, token refresh, sign-out, joining with a code, and who am I."""

    path = "/api"
    tags = ["accounts"]
    dependencies = {"accounts": Provide(provide_account_service, sync_to_thread=False)}

    @post("/auth/login", opt={"exclude_from_auth": True, "rate_limit": "auth"}, status_code=200)
    async def login(
        self, data: JSONBody[LoginRequest], accounts: Accounts, settings: AppSettings, request: Request[Any, Any, Any],
        cookie_mode: CookieMode = False,
    ) -> Response[TokenPair]:
        """Sign in with email and password; answers a short-lived access token and a refresh token."""
        return token_response(await accounts.sign_in(data.email, data.password, client_address(request)), settings, cookie_mode, 200)

    @post("/auth/refresh", opt={"exclude_from_auth": True, "rate_limit": "auth"}, status_code=200)
    async def refresh(
        self, accounts: Accounts, settings: AppSettings, data: JSONBody[RefreshRequest | None] = None,
        cookie_mode: CookieMode = False, refresh_cookie: RefreshCookie = None,
    ) -> Response[TokenPair]:
        """Rotate a refresh token (the body's, or the console's cookie) into a new token pair."""
        token = refresh_token_from(data.refresh_token if data else None, cookie_mode, refresh_cookie)
        if token is None:
            raise Unauthenticated("No refresh token: send it in the body (or, from the console, its cookie); sign in again.")
        return token_response(await accounts.refresh(token), settings, cookie_mode, 200)

    @post("/auth/logout", status_code=204, opt={"device_ok": True})
    async def logout(
        self, accounts: Accounts, user: CurrentUser, settings: AppSettings, data: JSONBody[LogoutRequest | None] = None,
        cookie_mode: CookieMode = False, refresh_cookie: RefreshCookie = None,
    ) -> Response[None]:
        """Revoke this access token (and the refresh family if given, or held in the console's cookie)."""
        await accounts.sign_out(user, refresh_token_from(data.refresh_token if data else None, cookie_mode, refresh_cookie))
        return signed_out_response(settings, cookie_mode)

    @post("/auth/join", opt={"exclude_from_auth": True, "rate_limit": "auth"}, status_code=202)
    async def join(self, data: JSONBody[JoinRequest], accounts: Accounts) -> JoinAccepted:
        """Join as a canvasser with a code from an organiser; the same answer whether or not the address had an account (sign in next)."""
        await accounts.redeem_join_code(data.code, data.display_name, data.email, data.password)
        return JoinAccepted()

    @get("/me", opt={"device_ok": True})
    async def me(self, user: CurrentUser) -> MeOut:
        """The caller, their campaigns and roles (as the server holds them)."""
        return MeOut(
            id=user.id,
            email=user.email,
            display_name=user.display_name,
            is_superuser=user.is_superuser,
            memberships=[MembershipOut(campaign_id=cid, role=role) for cid, role in sorted(user.roles.items())],
            device_id=user.device_id,
        )


class CampaignPeopleController(Controller):
    """Members, canvasser accounts, join codes and devices of one campaign."""

    path = "/api/campaigns/{campaign_id:int}"
    tags = ["accounts"]
    dependencies = {"accounts": Provide(provide_account_service, sync_to_thread=False)}

    @get("/members", guards=[require_role(*REVIEWERS)])
    async def list_members(self, campaign_id: FromPath[int], db_session: DbSession, user: CurrentUser) -> list[MemberOut]:
        """Everyone with a role in the campaign (names and email addresses: audited)."""
        rows = await db_session.execute(
            select(User, Membership.role)
            .join(Membership, Membership.user_id == User.id)
            .where(Membership.campaign_id == campaign_id)
            .order_by(User.display_name)
        )
        members = [MemberOut(user_id=u.id, email=u.email, display_name=u.display_name, role=r) for u, r in rows]
        record_audit(db_session, user, "read", "members", campaign_id=campaign_id, row_count=len(members))
        return members

    @post("/users", guards=[require_role(*ORGANISERS)], status_code=201)
    async def create_user(self, campaign_id: FromPath[int], data: JSONBody[UserCreate], accounts: Accounts, user: CurrentUser) -> MemberOut:
        """Create an account in this campaign (organisers: canvassers; admins: any role)."""
        created = await accounts.create_campaign_user(user, campaign_id, data.email, data.display_name, data.password, data.role)
        return MemberOut(user_id=created.id, email=created.email, display_name=created.display_name, role=data.role)

    @post("/members", guards=[require_role(*ORGANISERS)], status_code=200)
    async def add_member(self, campaign_id: FromPath[int], data: JSONBody[MemberAdd], accounts: Accounts, user: CurrentUser) -> MemberOut:
        """Give an existing account (a member of another campaign, say) a role here; organisers add canvassers, admins any role."""
        added, role = await accounts.add_existing_member(user, campaign_id, data.email, data.role)
        record_audit(accounts.session, user, "write", "members", campaign_id=campaign_id, row_count=1,
                     detail={"user_id": added.id, "role": str(role)})
        return MemberOut(user_id=added.id, email=added.email, display_name=added.display_name, role=role)

    @post("/join-codes", guards=[require_role(*ORGANISERS)], status_code=201)
    async def create_join_code(
        self, campaign_id: FromPath[int], data: JSONBody[JoinCodeCreate], accounts: Accounts, user: CurrentUser, settings: AppSettings
    ) -> JoinCodeOut:
        """A code volunteers can type or scan (the join URL goes in a QR code) to join as canvassers."""
        join = await accounts.create_join_code(user, campaign_id, data.hours_valid, data.max_uses)
        return join_code_out(join, settings.public_url)

    @get("/join-codes", guards=[require_role(*ORGANISERS)])
    async def list_join_codes(self, campaign_id: FromPath[int], accounts: Accounts, settings: AppSettings) -> list[JoinCodeOut]:
        """The campaign's join links, newest first, with uses left and whether each still works."""
        return [join_code_out(j, settings.public_url) for j in await accounts.join_codes(campaign_id)]

    @delete("/join-codes/{join_code_id:int}", guards=[require_role(*ORGANISERS)], status_code=204)
    async def revoke_join_code(self, campaign_id: FromPath[int], join_code_id: FromPath[int], accounts: Accounts) -> None:
        """Revoke a join link: it stops letting volunteers in (those who joined stay)."""
        await accounts.revoke_join_code(campaign_id, join_code_id)

    @get("/join-codes/{join_code_id:int}/qr.svg", guards=[require_role(*ORGANISERS)], media_type="image/svg+xml")
    async def join_code_qr(self, campaign_id: FromPath[int], join_code_id: FromPath[int], accounts: Accounts, settings: AppSettings) -> Response[str]:
        """The join link as a QR code (SVG), to print or show on a screen for volunteers to scan."""
        join = await accounts.join_code(campaign_id, join_code_id)
        return Response(join_code_qr_svg(join_url(join, settings.public_url)), media_type="image/svg+xml",
                        headers={"cache-control": "private, no-store"})

    @get("/teams", guards=[require_role(*REVIEWERS)])
    async def list_teams(self, campaign_id: FromPath[int], db_session: DbSession, user: CurrentUser) -> list[TeamOut]:
        """Teams with their lead, members (display names: audited) and the lists they hold."""
        out = await teams.team_outs(db_session, campaign_id)
        record_audit(db_session, user, "read", "teams", campaign_id=campaign_id, row_count=sum(len(t.members) for t in out))
        return out

    @post("/teams", guards=[require_role(*ORGANISERS)], status_code=201)
    async def create_team(self, campaign_id: FromPath[int], data: JSONBody[TeamCreate], db_session: DbSession, user: CurrentUser) -> TeamOut:
        """A named team with a lead; lists can then be assigned to it."""
        return await teams.create_team(db_session, user, campaign_id, data)

    @patch("/teams/{team_id:int}", guards=[require_role(*ORGANISERS)])
    async def update_team(self, campaign_id: FromPath[int], team_id: FromPath[int], data: JSONBody[TeamUpdate], db_session: DbSession, user: CurrentUser) -> TeamOut:
        """Rename a team or change its lead."""
        return await teams.update_team(db_session, user, campaign_id, team_id, data)

    @delete("/teams/{team_id:int}", guards=[require_role(*ORGANISERS)], status_code=204)
    async def delete_team(self, campaign_id: FromPath[int], team_id: FromPath[int], db_session: DbSession) -> None:
        """Delete a team; its lists go back to unassigned (work done on them is kept)."""
        await teams.delete_team(db_session, campaign_id, team_id)

    @post("/teams/{team_id:int}/members", guards=[require_role(*ORGANISERS)], status_code=200)
    async def add_team_member(
        self, campaign_id: FromPath[int], team_id: FromPath[int], data: JSONBody[TeamMemberAdd], db_session: DbSession, user: CurrentUser
    ) -> TeamOut:
        """Add a campaign member to a team: they hold the team's lists from their next sync."""
        return await teams.add_team_member(db_session, user, campaign_id, team_id, data.user_id)

    @delete("/teams/{team_id:int}/members/{user_id:int}", guards=[require_role(*ORGANISERS)], status_code=204)
    async def remove_team_member(self, campaign_id: FromPath[int], team_id: FromPath[int], user_id: FromPath[int], db_session: DbSession) -> None:
        """Take a member out of a team: their phone drops the team's lists on its next sync."""
        await teams.remove_team_member(db_session, campaign_id, team_id, user_id)

    @post("/devices", guards=[require_role(*MEMBERS)], status_code=201)
    async def register_device(self, campaign_id: FromPath[int], data: JSONBody[DeviceCreate], accounts: Accounts, user: CurrentUser) -> DeviceToken:
        """Register this phone for offline sync; the token is shown once."""
        return await accounts.register_device(user, campaign_id, data.name, data.node_id)

    @get("/devices", guards=[require_role(*MEMBERS)])
    async def list_devices(self, campaign_id: FromPath[int], db_session: DbSession, user: CurrentUser) -> list[DeviceOut]:
        """Organisers see every device of the campaign; others see their own."""
        query = select(Device).where(Device.campaign_id == campaign_id).order_by(Device.id)
        if not user.is_superuser and user.role_in(campaign_id) not in ORGANISERS:
            query = query.where(Device.user_id == user.id)
        devices = (await db_session.scalars(query)).all()
        return [
            DeviceOut(
                id=d.id, user_id=d.user_id, name=d.name, node_id=d.node_id, revoked=d.revoked_at is not None,
                last_seen_at=d.last_seen_at, last_sync_at=d.last_sync_at,
            )
            for d in devices
        ]

    @delete("/devices/{device_id:int}", guards=[require_role(*MEMBERS)], status_code=204)
    async def revoke_device(self, campaign_id: FromPath[int], device_id: FromPath[int], accounts: Accounts, user: CurrentUser) -> None:
        """Revoke a device (lost or stolen phone): its token stops working on the next request."""
        await accounts.revoke_device(user, campaign_id, device_id)




def join_url(join: JoinCode, public_url: str) -> str:
    """The link a volunteer opens (or scans) to join: the canvasser app's join page with the code."""
    return f"{public_url}/app/join?code={join.code}"


def join_code_out(join: JoinCode, public_url: str) -> JoinCodeOut:
    """A join code as the API shows it: its link, uses left and whether it still works."""
    from datetime import UTC, datetime

    expires = join.expires_at if join.expires_at.tzinfo else join.expires_at.replace(tzinfo=UTC)
    uses_left = max(0, join.max_uses - join.uses)
    return JoinCodeOut(
        code=join.code, expires_at=join.expires_at, max_uses=join.max_uses, join_url=join_url(join, public_url), id=join.id,
        uses=join.uses, uses_left=uses_left, revoked=join.revoked, active=not join.revoked and uses_left > 0 and expires > datetime.now(UTC),
        qr_svg=f"/api/campaigns/{join.campaign_id}/join-codes/{join.id}/qr.svg",
    )
