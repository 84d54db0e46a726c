"""The data model of DESIGN.md as SQLAlchemy 2 declarative models.

Privacy rule, enforced by `tests/test_privacy_rule.py`: no person-level table
has a column for ethnicity, declared or inferred. Ethnicity exists only as
census counts per area (`CensusArea.counts`), and targeting is by area.

Geometries are stored as WKB in WGS84 lon/lat with indexed bounding-box
columns, so SQLite and PostgreSQL behave the same: rows are pre-filtered by
the bbox in SQL and the exact predicate is computed with shapely.
"""

from __future__ import annotations

import enum
from datetime import UTC, date, datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    Enum,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from server.db.types import AwareDateTime

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    """Timezone-aware now, the only clock the models use."""
    return datetime.now(UTC)


class Base(DeclarativeBase):
    """Declarative base with stable constraint names (so Alembic diffs are clean)."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: AwareDateTime()}


class Role(enum.StrEnum):
    """A user's role within one campaign; guards read it from `Membership`."""

    admin = "admin"
    organiser = "organiser"
    lead = "lead"
    canvasser = "canvasser"


ROLE_ENUM = Enum(Role, name="campaign_role", native_enum=False, length=16)

# ---------------------------------------------------------------- accounts


class Campaign(Base):
    """A campaign: the unit of data ownership, membership and retention."""

    __tablename__ = "campaigns"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    slug: Mapped[str] = mapped_column(String(80), unique=True)
    polling_day: Mapped[date | None] = mapped_column(Date, nullable=True)
    retention_days: Mapped[int] = mapped_column(Integer, default=90)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class User(Base):
    """A person who signs in: canvasser, organiser, lead or admin (per campaign via Membership)."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    display_name: Mapped[str] = mapped_column(String(200))
    password_hash: Mapped[str | None] = mapped_column(String(200), nullable=True)
    is_superuser: Mapped[bool] = mapped_column(Boolean, default=False)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    memberships: Mapped[list[Membership]] = relationship(back_populates="user", lazy="selectin")


class Membership(Base):
    """A user's role in one campaign (server-held; the only source guards trust)."""

    __tablename__ = "memberships"
    __table_args__ = (UniqueConstraint("user_id", "campaign_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"), index=True)
    role: Mapped[Role] = mapped_column(ROLE_ENUM)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    user: Mapped[User] = relationship(back_populates="memberships")


class JoinCode(Base):
    """A short code a volunteer types or scans to join a campaign as a canvasser."""

    __tablename__ = "join_codes"

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"), index=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    role: Mapped[Role] = mapped_column(ROLE_ENUM, default=Role.canvasser)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), nullable=True)
    expires_at: Mapped[datetime]
    max_uses: Mapped[int] = mapped_column(Integer, default=50)
    uses: Mapped[int] = mapped_column(Integer, default=0)
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Device(Base):
    """A phone registered by a user; its token is revocable by deleting/revoking this row."""

    __tablename__ = "devices"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    node_id: Mapped[str] = mapped_column(String(64), unique=True)
    revoked_at: Mapped[datetime | None] = mapped_column(nullable=True)
    last_seen_at: Mapped[datetime | None] = mapped_column(nullable=True)
    last_sync_at: Mapped[datetime | None] = mapped_column(nullable=True)
    protocol_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    token_jti: Mapped[str | None] = mapped_column(String(64), nullable=True)  # the current token (migration 0009)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class RefreshToken(Base):
    """An opaque, hashed, single-use refresh token; reuse of a rotated one revokes its family."""

    __tablename__ = "refresh_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    family: Mapped[str] = mapped_column(String(64), index=True)
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None] = mapped_column(nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class RevokedAccessToken(Base):
    """Access-token ids (jti) revoked before expiry (sign-out); pruned once expired."""

    __tablename__ = "revoked_access_tokens"

    jti: Mapped[str] = mapped_column(String(64), primary_key=True)
    expires_at: Mapped[datetime]


# ---------------------------------------------------------------- geography


class CensusArea(Base):
    """A census or electoral area with its counts, as one campaign imported it.

    Each campaign holds its own copy (unique per campaign, code and vintage), so
    one campaign's import can never change another's boundaries or counts
    (migration 0010). `counts` maps canonical census column names (see
    geo/census.py) to resident counts for the area: the only place ethnicity exists.
    """

    __tablename__ = "census_areas"
    __table_args__ = (
        UniqueConstraint("campaign_id", "code", "vintage", name="uq_census_areas_campaign_code_vintage"),
        Index("ix_census_areas_bbox", "min_lon", "max_lon", "min_lat", "max_lat"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"), index=True)
    code: Mapped[str] = mapped_column(String(16), index=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    kind: Mapped[str] = mapped_column(String(16), index=True)
    vintage: Mapped[int] = mapped_column(Integer, default=2011)
    geometry: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    min_lon: Mapped[float | None] = mapped_column(Float, nullable=True)
    min_lat: Mapped[float | None] = mapped_column(Float, nullable=True)
    max_lon: Mapped[float | None] = mapped_column(Float, nullable=True)
    max_lat: Mapped[float | None] = mapped_column(Float, nullable=True)
    population: Mapped[int | None] = mapped_column(Integer, nullable=True)
    census_table: Mapped[str | None] = mapped_column(String(32), nullable=True)
    counts: Mapped[dict[str, int]] = mapped_column(JSON, default=dict)
    parent_code: Mapped[str | None] = mapped_column(String(16), nullable=True)


class CampaignArea(Base):
    """Which census areas make up a campaign's patch (always areas of that campaign: `CensusArea.campaign_id`)."""

    __tablename__ = "campaign_areas"

    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"), primary_key=True)
    area_id: Mapped[int] = mapped_column(ForeignKey("census_areas.id", ondelete="CASCADE"), primary_key=True)


class Address(Base):
    """A door (or a flat behind a shared door): flats in one block share `building_key`."""

    __tablename__ = "addresses"
    __table_args__ = (
        Index("ix_addresses_campaign_lonlat", "campaign_id", "lon", "lat"),
        Index("ix_addresses_campaign_uprn", "campaign_id", "uprn"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"), index=True)
    uprn: Mapped[str | None] = mapped_column(String(32), nullable=True)
    lines: Mapped[list[str]] = mapped_column(JSON, default=list)
    postcode: Mapped[str] = mapped_column(String(10), default="", index=True)
    lon: Mapped[float] = mapped_column(Float)
    lat: Mapped[float] = mapped_column(Float)
    building_key: Mapped[str] = mapped_column(String(64), index=True)
    street: Mapped[str] = mapped_column(String(200), default="")
    house_number: Mapped[str] = mapped_column(String(32), default="")
    flat: Mapped[str | None] = mapped_column(String(64), nullable=True)
    area_code: Mapped[str | None] = mapped_column(String(16), nullable=True, index=True)
    source: Mapped[str] = mapped_column(String(32), default="")
    # Editable household fields (last writer wins per field; versions in FieldVersion).
    household_note: Mapped[str | None] = mapped_column(Text, nullable=True)
    access_note: Mapped[str | None] = mapped_column(Text, nullable=True)


class Person(Base):
    """An elector on the register at an address, with contact details held only with consent.

    Deliberately no ethnicity, nationality-by-inference or name-derived column:
    see the privacy rule in DESIGN.md.
    """

    __tablename__ = "people"
    __table_args__ = (Index("ix_people_campaign_pd_eno", "campaign_id", "polling_district", "elector_number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"), index=True)
    address_id: Mapped[int | None] = mapped_column(ForeignKey("addresses.id", ondelete="SET NULL"), nullable=True, index=True)
    polling_district: Mapped[str] = mapped_column(String(16), default="")
    elector_number: Mapped[int | None] = mapped_column(Integer, nullable=True)
    elector_suffix: Mapped[str] = mapped_column(String(8), default="")
    franchise: Mapped[str] = mapped_column(String(8), default="")
    surname: Mapped[str] = mapped_column(String(200), default="")
    forenames: Mapped[str] = mapped_column(String(200), default="")
    match: Mapped[str] = mapped_column(String(16), default="")
    # Contact details: held only with recorded consent.
    phone: Mapped[str | None] = mapped_column(String(40), nullable=True)
    email: Mapped[str | None] = mapped_column(String(320), nullable=True)
    contact_consent: Mapped[str | None] = mapped_column(String(16), nullable=True)
    consent_at: Mapped[datetime | None] = mapped_column(nullable=True)
    note: Mapped[str | None] = mapped_column(Text, nullable=True)
    # A stated preference for leaflet language (asked on the doorstep); not ethnicity.
    preferred_language: Mapped[str | None] = mapped_column(String(40), nullable=True)


class FieldVersion(Base):
    """The HLC of the last accepted write of one editable field (last writer wins)."""

    __tablename__ = "field_versions"

    entity: Mapped[str] = mapped_column(String(16), primary_key=True)
    entity_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    field: Mapped[str] = mapped_column(String(40), primary_key=True)
    hlc: Mapped[str] = mapped_column(String(64))
    device_id: Mapped[int | None] = mapped_column(Integer, nullable=True)


class Flag(Base):
    """A safety flag derived from observation events (do-not-visit, moved away, deceased)."""

    __tablename__ = "flags"
    __table_args__ = (UniqueConstraint("address_id", "person_key", "kind"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"), index=True)
    address_id: Mapped[int] = mapped_column(Integer, index=True)
    person_key: Mapped[int] = mapped_column(Integer, default=0)  # person id, 0 for the whole household
    kind: Mapped[str] = mapped_column(String(32))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    set_hlc: Mapped[str] = mapped_column(String(64))
    cleared_hlc: Mapped[str | None] = mapped_column(String(64), nullable=True)


class Street(Base):
    """A walkable street segment (OSM way or synthetic street); major roads act as barriers when cutting."""

    __tablename__ = "streets"
    __table_args__ = (Index("ix_streets_campaign_bbox", "campaign_id", "min_lon", "max_lon", "min_lat", "max_lat"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    highway: Mapped[str] = mapped_column(String(32))
    geometry: Mapped[bytes] = mapped_column(LargeBinary)
    min_lon: Mapped[float] = mapped_column(Float)
    min_lat: Mapped[float] = mapped_column(Float)
    max_lon: Mapped[float] = mapped_column(Float)
    max_lat: Mapped[float] = mapped_column(Float)
    source: Mapped[str] = mapped_column(String(32), default="")


class Building(Base):
    """A building outline (OSM way or multipolygon with ``building=*``), drawn on maps with no tile server."""

    __tablename__ = "buildings"
    __table_args__ = (Index("ix_buildings_campaign_bbox", "campaign_id", "min_lon", "max_lon", "min_lat", "max_lat"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"), index=True)
    building: Mapped[str] = mapped_column(String(32), default="yes")
    geometry: Mapped[bytes] = mapped_column(LargeBinary)
    min_lon: Mapped[float] = mapped_column(Float)
    min_lat: Mapped[float] = mapped_column(Float)
    max_lon: Mapped[float] = mapped_column(Float)
    max_lat: Mapped[float] = mapped_column(Float)
    source: Mapped[str] = mapped_column(String(32), default="")


# ---------------------------------------------------------------- targets and walk lists


class Target(Base):
    """An area to canvass: a drawn polygon and/or chosen census areas, with the rule that made it."""

    __tablename__ = "targets"

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    rule: Mapped[dict[str, object]] = mapped_column(JSON, default=dict)
    geometry: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    min_lon: Mapped[float | None] = mapped_column(Float, nullable=True)
    min_lat: Mapped[float | None] = mapped_column(Float, nullable=True)
    max_lon: Mapped[float | None] = mapped_column(Float, nullable=True)
    max_lat: Mapped[float | None] = mapped_column(Float, nullable=True)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class WalkList(Base):
    """An ordered turf of doors with its route, as cut from a target."""

    __tablename__ = "walk_lists"

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"), index=True)
    target_id: Mapped[int | None] = mapped_column(ForeignKey("targets.id", ondelete="SET NULL"), nullable=True)
    name: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16), default="draft")
    doors: Mapped[int] = mapped_column(Integer, default=0)
    length_m: Mapped[float] = mapped_column(Float, default=0.0)
    minutes: Mapped[float] = mapped_column(Float, default=0.0)
    route: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    size_exception: Mapped[str | None] = mapped_column(String(24), nullable=True)
    routing: Mapped[str | None] = mapped_column(String(16), nullable=True)  # street_network | straight_line (migration 0012)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class WalkListStop(Base):
    """One address on a walk list; addresses of one building share a `stop_number`."""

    __tablename__ = "walk_list_stops"
    __table_args__ = (UniqueConstraint("walk_list_id", "address_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    walk_list_id: Mapped[int] = mapped_column(ForeignKey("walk_lists.id", ondelete="CASCADE"), index=True)
    address_id: Mapped[int] = mapped_column(ForeignKey("addresses.id", ondelete="CASCADE"), index=True)
    stop_number: Mapped[int] = mapped_column(Integer)
    position: Mapped[int] = mapped_column(Integer)


class Assignment(Base):
    """A walk list given to a canvasser (server-authoritative); `ended_at` set on reassignment.

    A list given to a team is one open assignment per member, each naming the team in
    `team_id`: sync scope stays "the lists I hold", and joining or leaving the team
    opens or ends that member's assignments.
    """

    __tablename__ = "assignments"

    id: Mapped[int] = mapped_column(primary_key=True)
    walk_list_id: Mapped[int] = mapped_column(ForeignKey("walk_lists.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    assigned_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), nullable=True)
    assigned_at: Mapped[datetime] = mapped_column(default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column(nullable=True)
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id", ondelete="SET NULL"), nullable=True, index=True)


class Team(Base):
    """A named group of a campaign's members with a team lead; lists can be assigned to it."""

    __tablename__ = "teams"
    __table_args__ = (UniqueConstraint("campaign_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    lead_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class TeamMember(Base):
    """A member of a team (the lead is one too)."""

    __tablename__ = "team_members"
    __table_args__ = (UniqueConstraint("team_id", "user_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    team_id: Mapped[int] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    added_at: Mapped[datetime] = mapped_column(default=utcnow)


# ---------------------------------------------------------------- surveys and canvass events


class Survey(Base):
    """A versioned question set; a new version is a new row, answers keep theirs."""

    __tablename__ = "surveys"
    __table_args__ = (UniqueConstraint("campaign_id", "name", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    version: Mapped[int] = mapped_column(Integer, default=1)
    questions: Mapped[list[dict[str, object]]] = mapped_column(JSON, default=list)
    # True for the published version phones use; drafts, superseded and archived versions are False
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # draft (editable, never sent to phones), published (immutable), archived (migration 0014)
    status: Mapped[str] = mapped_column(String(16), default="published", server_default="published")
    script: Mapped[str | None] = mapped_column(Text, nullable=True)  # read at the door
    # [{code, label, translations}]: which protocol outcome codes the phone offers, in order, with labels
    outcomes: Mapped[list[dict[str, object]] | None] = mapped_column(JSON, nullable=True)
    # language code -> {"name": ..., "script": ...}; question texts carry their own translations
    translations: Mapped[dict[str, dict[str, str]] | None] = mapped_column(JSON, nullable=True)
    published_at: Mapped[datetime | None] = mapped_column(nullable=True)


class ContactAttempt(Base):
    """A knock and its outcome; append-only, keyed by the client's UUID (insert-if-absent)."""

    __tablename__ = "contact_attempts"
    # (campaign_id, walk_list_id) also serves searches by campaign alone (migration 0006)
    __table_args__ = (Index("ix_contact_attempts_campaign_list", "campaign_id", "walk_list_id"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    # PostgreSQL enforces this foreign key with statement-level triggers instead (migration 0008)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    address_id: Mapped[int] = mapped_column(Integer, index=True)
    person_id: Mapped[int | None] = mapped_column(Integer, nullable=True, index=True)
    walk_list_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    outcome: Mapped[str] = mapped_column(String(24))
    hlc: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime | None] = mapped_column(nullable=True)
    user_id: Mapped[int | None] = mapped_column(Integer, nullable=True, index=True)
    device_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    # the phone's stamp was further ahead than the skew bound: kept as sent, received_at is the server's time
    time_untrusted: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))


class Answer(Base):
    """A survey answer; append-only like contact attempts (a correction is a new answer)."""

    __tablename__ = "answers"
    # searches by campaign, or campaign and question, use ix_answers_respondent (migration 0006)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    # PostgreSQL enforces this foreign key with statement-level triggers instead (migration 0008)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    address_id: Mapped[int] = mapped_column(Integer, index=True)
    person_id: Mapped[int | None] = mapped_column(Integer, nullable=True, index=True)
    walk_list_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    survey_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    question_key: Mapped[str] = mapped_column(String(64))
    value: Mapped[object] = mapped_column(JSON)
    hlc: Mapped[str] = mapped_column(String(64))
    user_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    device_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    # the phone's stamp was further ahead than the skew bound: kept as sent, received_at is the server's time
    time_untrusted: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))


class Observation(Base):
    """An observation event (moved away, deceased, do-not-visit set or cleared); flags derive from these."""

    __tablename__ = "observations"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"), index=True)
    address_id: Mapped[int] = mapped_column(Integer, index=True)
    person_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    kind: Mapped[str] = mapped_column(String(32))
    note: Mapped[str] = mapped_column(Text, default="")
    hlc: Mapped[str] = mapped_column(String(64))
    user_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    device_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    # the phone's stamp was further ahead than the skew bound: kept as sent, received_at is the server's time
    time_untrusted: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))


class VoidedEvent(Base):
    """A correcting event: an earlier contact attempt, answer or observation declared void by the
    user who recorded it (``void_event``, ``server/sync/voids.py``). The voided event leaves its
    table (so every tally, follow-up and export ignores it; the tallies' delete triggers take it
    back) and is kept here as it was, with who voided it and when."""

    __tablename__ = "voided_events"

    event_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    entity: Mapped[str] = mapped_column(String(24))
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"), index=True)
    address_id: Mapped[int] = mapped_column(Integer, index=True)
    person_id: Mapped[int | None] = mapped_column(Integer, nullable=True, index=True)
    payload: Mapped[str] = mapped_column(Text)
    void_hlc: Mapped[str] = mapped_column(String(64))
    user_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    device_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    voided_at: Mapped[datetime] = mapped_column(default=utcnow)


# ---------------------------------------------------------------- sync bookkeeping


class SyncCounter(Base):
    """A single-row counter bumped in every SQLite write transaction to order the change feed."""

    __tablename__ = "sync_counter"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    value: Mapped[int] = mapped_column(BigInteger, default=0)


class ChangeFeed(Base):
    """One committed change to a syncable record, the source of every pull.

    On PostgreSQL `txid` holds the writer's xid8 so a pull can stop below the
    oldest in-flight transaction; on SQLite `version` comes from SyncCounter.
    Rows hold ids only, never personal data (the record is read at pull time).
    """

    __tablename__ = "change_feed"
    # the pull's search and order; every push writes these rows, so no other index they pay for
    # (migration 0006); a list's stop erasures (never pushed) are found by list (migration 0013)
    __table_args__ = (
        Index("ix_change_feed_campaign_txid", "campaign_id", "txid", "id"),
        Index("ix_change_feed_stop_erasures", "walk_list_id",
              postgresql_where=text("entity = 'stop' AND op = 'erase'"),
              sqlite_where=text("entity = 'stop' AND op = 'erase'")),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True)
    campaign_id: Mapped[int] = mapped_column(Integer)
    entity: Mapped[str] = mapped_column(String(24))
    entity_id: Mapped[str] = mapped_column(String(40))
    op: Mapped[str] = mapped_column(String(8), default="upsert")
    walk_list_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    address_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    txid: Mapped[int | None] = mapped_column(BigInteger, nullable=True, index=True)
    version: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class DeviceReceipt(Base):
    """The last mutation sequence number applied per device (same transaction as the effects)."""

    __tablename__ = "device_receipts"

    device_id: Mapped[int] = mapped_column(ForeignKey("devices.id", ondelete="CASCADE"), primary_key=True)
    last_seq: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class MutationResult(Base):
    """The recorded result of each processed mutation, so a replay returns the same answer."""

    __tablename__ = "mutation_results"
    # by campaign only rejections are ever listed: applied results (nearly all) skip the index
    __table_args__ = (
        Index("ix_mutation_results_rejected", "campaign_id",
              postgresql_where=text("status = 'rejected'"), sqlite_where=text("status = 'rejected'")),
    )

    device_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(Integer)
    op: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(Text, default="")
    entity: Mapped[str | None] = mapped_column(String(24), nullable=True)
    entity_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    server_hlc: Mapped[str] = mapped_column(String(64), default="")
    user_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class HeldMutation(Base):
    """A pushed mutation not applied as sent (rejected, restamp, conflicting duplicate, repeated
    seq), kept with its full payload for an organiser to re-apply, edit then apply, or dismiss."""

    __tablename__ = "held_mutations"
    __table_args__ = (Index("ix_held_mutations_campaign_review", "campaign_id", "review"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True)
    campaign_id: Mapped[int] = mapped_column(Integer)
    device_id: Mapped[int] = mapped_column(Integer)
    user_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    seq: Mapped[int] = mapped_column(BigInteger)
    op: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(Text, default="", server_default="")
    entity: Mapped[str | None] = mapped_column(String(24), nullable=True)
    entity_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    address_id: Mapped[int | None] = mapped_column(Integer, nullable=True)  # what erasure deletes it by
    person_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    payload: Mapped[str] = mapped_column(Text)
    review: Mapped[str] = mapped_column(String(16), default="open", server_default="open")  # open, applied, dismissed
    reviewed_at: Mapped[datetime | None] = mapped_column(nullable=True)
    reviewed_by: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Conflict(Base):
    """The losing side of two concurrent edits of one field, kept for an organiser to review."""

    __tablename__ = "conflicts"

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(Integer, index=True)
    entity: Mapped[str] = mapped_column(String(16))
    entity_id: Mapped[int] = mapped_column(Integer)
    field: Mapped[str] = mapped_column(String(40))
    losing_value: Mapped[str | None] = mapped_column(Text, nullable=True)
    losing_hlc: Mapped[str] = mapped_column(String(64))
    losing_device_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    winning_value: Mapped[str | None] = mapped_column(Text, nullable=True)
    winning_hlc: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    resolved_at: Mapped[datetime | None] = mapped_column(nullable=True)
    resolved_by: Mapped[int | None] = mapped_column(Integer, nullable=True)


class Tombstone(Base):
    """An id-only record that a person or address was erased; sent to phones as `erase`."""

    __tablename__ = "tombstones"
    __table_args__ = (UniqueConstraint("entity", "entity_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(Integer, index=True)
    entity: Mapped[str] = mapped_column(String(24))
    entity_id: Mapped[str] = mapped_column(String(40))
    erased_at: Mapped[datetime] = mapped_column(default=utcnow)
    erased_by: Mapped[int | None] = mapped_column(Integer, nullable=True)


class AuditEvent(Base):
    """Who read or exported personal data, what, when and how many rows."""

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    user_id: Mapped[int | None] = mapped_column(Integer, nullable=True, index=True)
    device_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    campaign_id: Mapped[int | None] = mapped_column(Integer, nullable=True, index=True)
    action: Mapped[str] = mapped_column(String(40))
    resource: Mapped[str] = mapped_column(String(200))
    row_count: Mapped[int] = mapped_column(Integer, default=0)
    detail: Mapped[dict[str, object]] = mapped_column(JSON, default=dict)


class ImportJob(Base):
    """A long import or cut running in the background, with progress for the console."""

    __tablename__ = "jobs"

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int | None] = mapped_column(Integer, nullable=True, index=True)
    kind: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16), default="queued")
    done: Mapped[int] = mapped_column(Integer, default=0)
    total: Mapped[int | None] = mapped_column(Integer, nullable=True)
    message: Mapped[str] = mapped_column(Text, default="")
    result: Mapped[dict[str, object]] = mapped_column(JSON, default=dict)
    created_by: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(nullable=True)


PERSON_LEVEL_TABLES = (
    "people",
    "addresses",
    "contact_attempts",
    "answers",
    "observations",
    "conflicts",
    "users",
    "flags",
    "field_versions",
    "mutation_results",
    "held_mutations",
)
"""Tables that describe or are about an individual; the privacy test scans these."""


# ---------------------------------------------------------------- results (summaries and follow-ups)
#
# The result tallies are derived data, maintained by database triggers on
# `contact_attempts` and `answers` (migrations 0003 and 0005) so every writer
# (sync push, paper key-in, bulk load) keeps them right; on PostgreSQL new
# attempts are queued and folded in set-based before every read
# (`server.results.tallies`); `server.results.services.rebuild_result_tallies`
# recomputes them from the events. They hold counts only, never a person's id.


class ResultDoorTally(Base):
    """Attempts and outcome counts per door, walk list and canvasser (0 = none): feeds progress figures."""

    __tablename__ = "result_door_tally"

    campaign_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    address_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    walk_list_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    contacts: Mapped[int] = mapped_column(Integer, default=0)
    n_spoke: Mapped[int] = mapped_column(Integer, default=0)
    n_not_home: Mapped[int] = mapped_column(Integer, default=0)
    n_refused: Mapped[int] = mapped_column(Integer, default=0)
    n_moved: Mapped[int] = mapped_column(Integer, default=0)
    n_deceased: Mapped[int] = mapped_column(Integer, default=0)
    n_inaccessible: Mapped[int] = mapped_column(Integer, default=0)
    n_come_back: Mapped[int] = mapped_column(Integer, default=0)
    n_do_not_visit: Mapped[int] = mapped_column(Integer, default=0)
    n_wrong_address: Mapped[int] = mapped_column(Integer, default=0)
    n_other: Mapped[int] = mapped_column(Integer, default=0)


class ResultGroupTally(Base):
    """Progress figures per campaign (kind 'campaign', key 0), walk list ('list') and canvasser ('user'); 0 = none.

    `knocked` and `contacted` are distinct doors, kept exact by the attempt trigger,
    which checks the door tally before and after each event.
    """

    __tablename__ = "result_group_tally"

    campaign_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(8), primary_key=True)
    key: Mapped[int] = mapped_column(Integer, primary_key=True)
    knocked: Mapped[int] = mapped_column(Integer, default=0)
    contacted: Mapped[int] = mapped_column(Integer, default=0)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    n_spoke: Mapped[int] = mapped_column(Integer, default=0)
    n_not_home: Mapped[int] = mapped_column(Integer, default=0)
    n_refused: Mapped[int] = mapped_column(Integer, default=0)
    n_moved: Mapped[int] = mapped_column(Integer, default=0)
    n_deceased: Mapped[int] = mapped_column(Integer, default=0)
    n_inaccessible: Mapped[int] = mapped_column(Integer, default=0)
    n_come_back: Mapped[int] = mapped_column(Integer, default=0)
    n_do_not_visit: Mapped[int] = mapped_column(Integer, default=0)
    n_wrong_address: Mapped[int] = mapped_column(Integer, default=0)
    n_other: Mapped[int] = mapped_column(Integer, default=0)


class ResultHourTally(Base):
    """Attempts and contacts per campaign and UTC hour (hours since the epoch): the by-day and by-hour charts."""

    __tablename__ = "result_hour_tally"

    campaign_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    hour: Mapped[int] = mapped_column(Integer, primary_key=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    contacts: Mapped[int] = mapped_column(Integer, default=0)


class ResultAnswerCell(Base):
    """How many respondents' current answer (latest by HLC) is `value` per area and walk list (0 = none)."""

    __tablename__ = "result_answer_cells"

    campaign_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    area_code: Mapped[str] = mapped_column(String(16), primary_key=True)
    walk_list_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    question_key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(String(200), primary_key=True)
    n: Mapped[int] = mapped_column(Integer, default=0)


class ResultPending(Base):
    """Contact attempts not yet folded into the tallies (PostgreSQL; migrations 0005, 0007).

    The queue trigger copies the columns the tallies read, so the fold never
    goes back to ``contact_attempts``. Outcomes and ids only: nothing personal.
    """

    __tablename__ = "result_pending"

    attempt_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    campaign_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    address_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    walk_list_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    user_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    outcome: Mapped[str | None] = mapped_column(String(24), nullable=True)
    at: Mapped[datetime | None] = mapped_column(nullable=True)
    received_at: Mapped[datetime | None] = mapped_column(nullable=True)


class FollowUp(Base):
    """A follow-up of a person's doorstep request (join, volunteer, call back, language) marked done."""

    __tablename__ = "follow_ups"
    __table_args__ = (UniqueConstraint("person_id", "reason"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"), index=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"), index=True)
    reason: Mapped[str] = mapped_column(String(24))
    done_at: Mapped[datetime] = mapped_column(default=utcnow)
    done_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), nullable=True)
    note: Mapped[str] = mapped_column(Text, default="")


# Lets the answer-tally triggers find a respondent's previous answer to a question without a scan.
Index("ix_answers_respondent", Answer.campaign_id, Answer.question_key, Answer.person_id, Answer.address_id)
