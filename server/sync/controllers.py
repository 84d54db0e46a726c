"""HTTP endpoints of the sync protocol (device tokens only); the contract is docs/sync-protocol.md."""

from __future__ import annotations

import zlib
from typing import Any

import msgspec
from litestar import Controller, Request, get, post
from litestar.params import FromPath, FromQuery

from server.accounts.guards import require_device
from server.accounts.security import AuthUser
from server.audit import record_audit
from server.db.session import autocommit_session
from server.dependencies import AppSettings, CurrentUser, DbSession
from server.errors import Forbidden, InvalidInput, PayloadTooLarge, UpgradeRequired
from server.observability import record_push
from server.openapi import documented_body
from server.sync.pull import cursor_key, list_page, pull_changes
from server.sync.store import PushContext, RawPushRequest, receive_push
from sync.protocol import (
    PROTOCOL_HEADER,
    SUPPORTED_PROTOCOL_VERSIONS,
    ListPage,
    PullRequest,
    PullResponse,
    PushRequest,
    PushResponse,
)

MAX_BATCH = 1000


def check_protocol_version(version: Any) -> None:
    """426 upgrade-required for a missing or unsupported protocol version (the phone keeps its queue)."""
    try:
        number = int(version)
    except (TypeError, ValueError):
        number = -1
    if number not in SUPPORTED_PROTOCOL_VERSIONS:
        raise UpgradeRequired(
            f"Protocol version {version!r} is not supported; update the app. Nothing was lost: "
            "keep the queued changes and send them after upgrading.",
            supported_versions=sorted(SUPPORTED_PROTOCOL_VERSIONS),
        )


async def read_body(request: Request[Any, Any, Any], limit: int) -> bytes:
    """The request body, gunzipped if ``Content-Encoding: gzip`` (bounded against zip bombs)."""
    body = await request.body()
    encoding = request.headers.get("content-encoding", "").lower()
    if encoding in ("", "identity"):
        return body
    if encoding != "gzip":
        raise InvalidInput(f"Unsupported Content-Encoding {encoding!r}; use gzip or none.")
    inflater = zlib.decompressobj(wbits=31)
    try:
        data = inflater.decompress(body, limit + 1)
    except zlib.error as exc:
        raise InvalidInput("The gzip body could not be decompressed.") from exc
    if len(data) > limit or inflater.unconsumed_tail:
        raise PayloadTooLarge("The decompressed body is too large.")
    return data


class DeviceRef(msgspec.Struct, frozen=True):
    """The pushing device as authentication loaded it (revocation already checked there)."""

    id: int
    node_id: str
    campaign_id: int


def device_for(user: AuthUser, device_id: str) -> DeviceRef:
    """The caller's device; the body's device id must be the token's device node id."""
    if user.device_id is None or user.device_node_id is None or user.device_campaign_id is None:
        raise Forbidden("Sync needs a device token: register this phone first.")
    if user.device_node_id != device_id:
        raise Forbidden("The device id in the request does not match the device token.")
    return DeviceRef(id=user.device_id, node_id=user.device_node_id, campaign_id=user.device_campaign_id)


class SyncController(Controller):
    """Push mutations, pull changes, download newly assigned walk lists."""

    path = "/api/sync"
    tags = ["sync"]
    opt = {"device_ok": True, "rate_limit": "sync"}
    guards = [require_device]

    @post("/push", status_code=200, dependencies=documented_body(PushRequest))
    async def push(
        self,
        request: Request[Any, Any, Any],
        db_session: DbSession,
        user: CurrentUser,
        settings: AppSettings,
    ) -> PushResponse:
        """Apply a batch of mutations atomically; replays return the same results."""
        check_protocol_version(request.headers.get(PROTOCOL_HEADER))
        body = await read_body(request, settings.max_request_bytes)
        try:
            push = msgspec.json.decode(body, type=RawPushRequest)
        except msgspec.DecodeError as exc:
            raise InvalidInput(f"Malformed push: {exc}") from exc
        check_protocol_version(push.protocol_version)
        if len(push.mutations) > MAX_BATCH:
            raise PayloadTooLarge(f"At most {MAX_BATCH} mutations per push.")
        device = device_for(user, push.device_id)
        context = PushContext(
            device_id=device.id,
            node_id=device.node_id,
            user_id=user.id,
            campaign_id=device.campaign_id,
            role=user.role_in(device.campaign_id),
            max_skew_ms=settings.max_clock_skew_seconds * 1000,
            protocol_version=push.protocol_version,  # stamped on the device with the receipt
        )
        response = await receive_push(
            db_session, context, push.mutations, lambda: autocommit_session(request.app.state)
        )
        record_push(response)
        return response

    @post("/pull", status_code=200, dependencies=documented_body(PullRequest))
    async def pull(
        self,
        request: Request[Any, Any, Any],
        db_session: DbSession,
        user: CurrentUser,
        settings: AppSettings,
    ) -> PullResponse:
        """One page of changes in the device's scope after its cursor."""
        check_protocol_version(request.headers.get(PROTOCOL_HEADER))
        body = await read_body(request, settings.max_request_bytes)
        try:
            pull = msgspec.json.decode(body, type=PullRequest)
        except msgspec.DecodeError as exc:
            raise InvalidInput(f"Malformed pull: {exc}") from exc
        check_protocol_version(pull.protocol_version)
        device = device_for(user, pull.device_id)
        response = await pull_changes(
            db_session,
            user_id=user.id,
            campaign_id=device.campaign_id,
            cursor=pull.cursor,
            limit=pull.limit,
            key=cursor_key(settings.secret_key),
            device=device.node_id,
        )
        if response.changes:
            record_audit(
                db_session,
                user,
                "sync_pull",
                "/api/sync/pull",
                campaign_id=device.campaign_id,
                row_count=len(response.changes),
            )
        return response

    @get("/lists/{list_id:int}")
    async def download_list(
        self,
        request: Request[Any, Any, Any],
        list_id: FromPath[int],
        db_session: DbSession,
        user: CurrentUser,
        page_token: FromQuery[str | None] = None,
    ) -> ListPage:
        """One page of a walk list assigned to the caller (resumable with ``page_token``)."""
        check_protocol_version(request.headers.get(PROTOCOL_HEADER))
        if user.device_id is None or user.device_node_id is None:
            raise Forbidden("Sync needs a device token: register this phone first.")
        device = device_for(user, user.device_node_id)
        page = await list_page(
            db_session,
            user_id=user.id,
            campaign_id=device.campaign_id,
            list_id=list_id,
            page_token=page_token,
        )
        if page is None:
            from server.errors import NotFound

            raise NotFound(f"Walk list {list_id} is not assigned to you.")
        record_audit(
            db_session,
            user,
            "sync_list_download",
            f"/api/sync/lists/{list_id}",
            campaign_id=device.campaign_id,
            row_count=len(page.changes),
        )
        return page
