"""Metrics and logs (issue 18): Prometheus `/metrics`, JSON log lines with a request id, nothing personal."""

from __future__ import annotations

import json
import logging
import re

import msgspec
from litestar import Litestar
from litestar.testing import AsyncTestClient

from server.observability import JsonFormatter, request_id_var
from tests.conftest import World

PROTOCOL = {"X-Canvass-Protocol": "1", "Content-Type": "application/json"}


def metric(text: str, name: str, **labels: str) -> float:
    """The value of one sample in the Prometheus text format (0 when absent)."""
    total = 0.0
    for line in text.splitlines():
        if line.startswith("#") or not line.startswith(name):
            continue
        head, _, value = line.rpartition(" ")
        if head.split("{", 1)[0] != name:
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', head))
        if all(found.get(k) == v for k, v in labels.items()):
            total += float(value)
    return total


async def test_metrics_by_route_template_pushes_jobs_and_fold_lag(client: AsyncTestClient[Litestar], world: World) -> None:
    """Latency is labelled by route template (never an id); pushes, jobs and fold lag are exported."""
    before = (await client.get("/metrics")).text
    campaign = f"/api/campaigns/{world.campaign_a}"
    assert (await client.get(campaign, headers=world.auth("organiser"))).status_code == 200
    device = (await client.post(f"{campaign}/devices", json={"name": "p"}, headers=world.auth("canvasser"))).json()
    pushed = await client.post(
        "/api/sync/push",
        content=msgspec.json.encode({"protocol_version": 1, "device_id": device["node_id"], "mutations": []}),
        headers={"Authorization": f"Bearer {device['token']}", **PROTOCOL},
    )
    assert pushed.status_code == 200, pushed.text
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    after = response.text
    template = "/api/campaigns/{campaign_id}"
    assert metric(after, "canvass_request_duration_seconds_count", path=template, method="GET") >= 1
    assert f'path="{campaign}"' not in after  # ids never become label values
    assert metric(after, "canvass_sync_pushes_total") == metric(before, "canvass_sync_pushes_total") + 1
    assert "canvass_jobs{" in after and "canvass_fold_lag_seconds" in after
    assert metric(after, "canvass_fold_lag_seconds") >= 0


async def test_request_id_is_echoed_or_made(client: AsyncTestClient[Litestar]) -> None:
    """A balancer's X-Request-ID comes back; a missing or odd one is replaced by a fresh id."""
    given = await client.get("/health", headers={"X-Request-ID": "lb-1234.abc"})
    assert given.headers["x-request-id"] == "lb-1234.abc"
    made = await client.get("/health")
    assert re.fullmatch(r"[0-9a-f]{32}", made.headers["x-request-id"])
    odd = await client.get("/health", headers={"X-Request-ID": "<script>" + "x" * 100})
    assert re.fullmatch(r"[0-9a-f]{32}", odd.headers["x-request-id"])
    refused = await client.post("/api/auth/login", json={"email": "x@y.z", "password": "nope"}, headers={"X-Request-ID": "r-401"})
    assert refused.status_code == 401 and refused.headers["x-request-id"] == "r-401"


class Lines(logging.Handler):
    """Collects formatted lines (JSON) as they are written, while the request's id is current."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.setFormatter(JsonFormatter())
        self.lines: list[dict[str, object]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(json.loads(self.format(record)))


async def test_access_log_is_json_with_request_id_and_nothing_personal(client: AsyncTestClient[Litestar]) -> None:
    """One JSON line per request: route template, status, duration, request id; no email, password, address or query."""
    logger = logging.getLogger("canvass.access")
    handler, level = Lines(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        await client.post(
            "/api/auth/login?who=someone.private@example.org",
            json={"email": "someone.private@example.org", "password": "hunter2hunter2"},
            headers={"X-Request-ID": "trace-77"},
        )
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    line = handler.lines[-1]
    assert line["route"] == "/api/auth/login" and line["status"] == 401 and line["method"] == "POST"
    assert line["request_id"] == "trace-77" and float(line["duration_ms"]) >= 0  # type: ignore[arg-type]
    blob = json.dumps(handler.lines).lower()
    for secret in ("someone", "example.org", "hunter2", "testclient", "127.0.0.1"):
        assert secret not in blob


def test_formatter_puts_the_request_id_of_the_moment_on_every_line() -> None:
    """Any log line written while a request runs carries its id."""
    token = request_id_var.set("abc-1")
    try:
        record = logging.LogRecord("canvass.x", logging.WARNING, __file__, 1, "folded %d", (3,), None)
        line = json.loads(JsonFormatter().format(record))
    finally:
        request_id_var.reset(token)
    assert line == {**line, "msg": "folded 3", "level": "warning", "logger": "canvass.x", "request_id": "abc-1"}
