"""API shapes of the accounts domain (msgspec Structs, never ORM objects)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import msgspec

from server.db.models import Role
from server.plain_text import PlainName

Email = Annotated[str, msgspec.Meta(min_length=3, max_length=320, pattern=r"^[^@\s]+@[^@\s]+$")]
Password = Annotated[str, msgspec.Meta(min_length=12, max_length=256, description="At least 12 characters; common passwords are refused.")]
Name = PlainName


class LoginRequest(msgspec.Struct, forbid_unknown_fields=True):
    """Password sign-in."""

    email: Annotated[str, msgspec.Meta(min_length=1, max_length=320)]
    password: Annotated[str, msgspec.Meta(min_length=1, max_length=256)]


class RefreshRequest(msgspec.Struct, forbid_unknown_fields=True):
    """Exchange a refresh token for a new pair (the old one is spent)."""

    refresh_token: Annotated[str, msgspec.Meta(min_length=10, max_length=200)]


class LogoutRequest(msgspec.Struct):
    """Sign out; the refresh token's whole family is revoked when given."""

    refresh_token: str | None = None


class TokenPair(msgspec.Struct):
    """A short-lived bearer token and a single-use refresh token."""

    access_token: str
    refresh_token: str
    expires_in: int
    token_type: str = "Bearer"
    user_id: int = 0


class JoinRequest(msgspec.Struct, forbid_unknown_fields=True):
    """A volunteer joins with a code an organiser gave them."""

    code: Annotated[str, msgspec.Meta(min_length=4, max_length=32)]
    display_name: Name
    email: Email
    password: Password


class JoinAccepted(msgspec.Struct):
    """The one answer to a join with a valid code, whether or not the address already had an account."""

    status: str = "accepted"
    detail: str = "Thank you. Sign in with your email address and password to start."


class MembershipOut(msgspec.Struct):
    """One campaign the caller belongs to, and their role there."""

    campaign_id: int
    role: Role


class MeOut(msgspec.Struct):
    """The caller."""

    id: int
    email: str
    display_name: str
    is_superuser: bool
    memberships: list[MembershipOut]
    device_id: int | None = None


class UserCreate(msgspec.Struct, forbid_unknown_fields=True):
    """An organiser creates an account for a canvasser (or an admin for any role)."""

    email: Email
    display_name: Name
    password: Password
    role: Role = Role.canvasser


class MemberOut(msgspec.Struct):
    """A member of a campaign."""

    user_id: int
    email: str
    display_name: str
    role: Role


class DeviceCreate(msgspec.Struct, forbid_unknown_fields=True):
    """Register the phone in hand as a sync device; ``node_id`` is the install's own (sync contract A)."""

    name: Name
    node_id: Annotated[str, msgspec.Meta(pattern="^[0-9a-f]{16}$")] | None = None


class DeviceToken(msgspec.Struct):
    """A device's id, HLC node id and its revocable token (shown once)."""

    device_id: int
    node_id: str
    token: str
    campaign_id: int


class DeviceOut(msgspec.Struct):
    """A registered device."""

    id: int
    user_id: int
    name: str
    node_id: str
    revoked: bool
    last_seen_at: datetime | None
    last_sync_at: datetime | None


class JoinCodeCreate(msgspec.Struct, forbid_unknown_fields=True):
    """Options for a join code."""

    hours_valid: Annotated[int, msgspec.Meta(ge=1, le=24 * 60)] = 72
    max_uses: Annotated[int, msgspec.Meta(ge=1, le=1000)] = 50


class JoinCodeOut(msgspec.Struct):
    """A join code, and the URL its QR code carries (`qr_svg`, drawn by the server)."""

    code: str
    expires_at: datetime
    max_uses: int
    join_url: str
    id: int = 0
    uses: int = 0
    uses_left: int = 0
    revoked: bool = False
    active: bool = True
    """Neither revoked, expired nor used up: the link still lets volunteers in."""
    qr_svg: str = ""
    """Path of the link's QR code as SVG (needs the organiser's sign-in)."""


class MemberAdd(msgspec.Struct, forbid_unknown_fields=True):
    """Give an existing account a role in this campaign (it may already belong to others)."""

    email: Email
    role: Role = Role.canvasser


class TeamPerson(msgspec.Struct):
    """A member of a team."""

    user_id: int
    display_name: str


class TeamOut(msgspec.Struct):
    """A team: its lead, its members and the lists it holds."""

    id: int
    name: str
    lead: TeamPerson | None
    members: list[TeamPerson]
    walk_list_ids: list[int]


class TeamCreate(msgspec.Struct, forbid_unknown_fields=True):
    """A new team; the lead is made a member too."""

    name: Name
    lead_user_id: int | None = None
    member_ids: Annotated[list[int], msgspec.Meta(max_length=500)] = msgspec.field(default_factory=list)


class TeamUpdate(msgspec.Struct, forbid_unknown_fields=True):
    """Rename a team or change its lead (the new lead is made a member)."""

    name: Name | None = None
    lead_user_id: int | None = None


class TeamMemberAdd(msgspec.Struct, forbid_unknown_fields=True):
    """Add a campaign member to a team: they receive the team's lists on their next sync."""

    user_id: int
