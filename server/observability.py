"""Metrics and logs for running several instances: Prometheus `/metrics`, JSON log lines with a request id.

Metrics (prometheus-client, through Litestar's Prometheus middleware for the
request figures). Each `canvass serve` process answers for itself: scrape every
instance (per instance, the normal Prometheus setup), not the load balancer.
With `canvass serve --workers N` (several processes behind one port) set
`PROMETHEUS_MULTIPROC_DIR` to an empty directory shared by the workers, and
`/metrics` then sums them (prometheus-client's multiprocess mode).

* `canvass_requests_total`, `canvass_request_duration_seconds` (histogram):
  by method, route template (`/api/campaigns/{campaign_id:int}/...`, never
  the ids themselves) and status.
* `canvass_sync_pushes_total`, `canvass_sync_mutations_total{status}`:
  pushes received and their mutations by verdict (applied, duplicate,
  conflict, rejected, restamp).
* `canvass_jobs{status}`: background jobs queued or running (read from the
  database when scraped, so every instance reports the same queue depth).
* `canvass_fold_lag_seconds`: age of the oldest contact attempt not yet folded
  into the result tallies (PostgreSQL; 0 on SQLite, whose triggers keep the
  tallies current); `canvass_fold_passes_total`: background folds this instance ran.

Logs: with `CANVASS_LOG_FORMAT=json` (the default for `canvass serve`) every
line on stderr is one JSON object; each request is logged once (method, route
template, status, duration, request id) instead of uvicorn's access line,
which carries the client's address and query string. The request id is the
caller's `X-Request-ID` when it is a short token (a balancer's), else a new
one, and is echoed in the response's `X-Request-ID`. Nothing personal is
logged: no address, query string, body, name or email, and SQL errors never
include their parameters (`hide_parameters` on the engine).
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import sys
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from litestar import Controller, get
from litestar.datastructures import State
from litestar.enums import ScopeType
from litestar.middleware import ASGIMiddleware
from litestar.plugins.prometheus import PrometheusConfig
from litestar.response import Response
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    generate_latest,
    multiprocess,
)
from sqlalchemy import text

from server.db.dialect import is_postgres

REQUEST_ID_HEADER = "x-request-id"
_REQUEST_ID_OK = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("canvass_request_id", default="")

access_log = logging.getLogger("canvass.access")

PROMETHEUS = PrometheusConfig(app_name="canvass", prefix="canvass", group_path=True, exclude=["^/metrics$"])

PUSHES = Counter("canvass_sync_pushes_total", "Sync pushes received (each a batch of mutations).")
MUTATIONS = Counter("canvass_sync_mutations_total", "Mutations in sync pushes, by the server's verdict.", ["status"])
JOBS = Gauge("canvass_jobs", "Background jobs by status (queued, running): the job queue depth.", ["status"],
             multiprocess_mode="livemostrecent")
FOLD_LAG = Gauge("canvass_fold_lag_seconds", "Age of the oldest contact attempt not yet folded into the result tallies.",
                 multiprocess_mode="livemostrecent")
STORE_ERRORS = Counter("canvass_store_errors_total",
                       "Reads and writes of the shared store (Redis) that failed; meanwhile limits are not counted.")
FOLD_PASSES = Counter("canvass_fold_passes_total", "Background folds of the result tallies this instance ran.")
FOLDED = Counter("canvass_fold_attempts_total", "Contact attempts the background fold took in on this instance.")


def record_push(response: Any) -> None:
    """Count one push and its mutations by verdict (a `PushResponse`)."""
    PUSHES.inc()
    counts: dict[str, int] = {}
    for result in response.results:
        counts[result.status] = counts.get(result.status, 0) + 1
    for status, n in counts.items():
        MUTATIONS.labels(status=status).inc(n)


def record_fold(folded: int) -> None:
    """A background fold pass of this instance (`fold_periodically`'s `on_pass`)."""
    FOLD_PASSES.inc()
    FOLDED.inc(folded)


async def refresh_database_gauges(state: State) -> None:
    """Job queue depth and fold lag, read from the database (shared by every instance)."""
    sessionmaker = state.get("sessionmaker")
    if sessionmaker is None:
        return
    async with sessionmaker() as session:
        rows = (await session.execute(
            text("SELECT status, count(*) FROM jobs WHERE status IN ('queued', 'running') GROUP BY status"))).all()
        found = {str(status): int(n) for status, n in rows}
        for status in ("queued", "running"):
            JOBS.labels(status=status).set(found.get(status, 0))
        if is_postgres(session):
            lag = await session.scalar(text(
                "SELECT coalesce(extract(epoch FROM now() - min(received_at)), 0) FROM result_pending"))
            FOLD_LAG.set(max(0.0, float(lag or 0)))
        else:
            FOLD_LAG.set(0)


class MetricsController(Controller):
    """Prometheus text format; no authentication (no personal data), so keep it off the public balancer."""

    path = "/metrics"
    include_in_schema = False

    @get("", opt={"exclude_from_auth": True}, media_type=CONTENT_TYPE_LATEST)
    async def metrics(self, state: State) -> Response[bytes]:
        """Every metric of this instance (or of all workers, in multiprocess mode)."""
        import os

        try:
            await refresh_database_gauges(state)
        except Exception:  # the request figures still answer when the database does not
            logging.getLogger("canvass.metrics").warning("could not read job queue depth and fold lag", exc_info=True)
        registry: Any = REGISTRY
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)


# ------------------------------------------------------------------ request ids and logs


class RequestIdMiddleware(ASGIMiddleware):
    """Take or make the request id, echo it in `X-Request-ID`, log one line per request."""

    scopes = (ScopeType.HTTP,)

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        incoming = ""
        for name, value in scope.get("headers", []):
            if name == b"x-request-id":
                incoming = value.decode("latin-1")
                break
        request_id = incoming if _REQUEST_ID_OK.match(incoming) else uuid.uuid4().hex
        token = request_id_var.set(request_id)
        status = [500]
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", request_id.encode()))
                message = {**message, "headers": headers}  # type: ignore[typeddict-item]
            await send(message)

        try:
            await next_app(scope, receive, send_with_id)
        finally:
            if access_log.isEnabledFor(logging.INFO):
                access_log.info("request", extra={
                    "method": scope.get("method", ""),
                    "route": scope.get("path_template") or "(unrouted)",
                    "status": status[0],
                    "duration_ms": round((time.perf_counter() - started) * 1000, 1),
                })
            request_id_var.reset(token)


_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName", "color_message"}


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, message, request id and any `extra` fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        request_id = request_id_var.get()
        if request_id:
            entry["request_id"] = request_id
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value if isinstance(value, str | int | float | bool) or value is None else str(value)
        if record.exc_info:
            entry["exc_type"] = record.exc_info[0].__name__ if record.exc_info[0] else ""
            entry["traceback"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def configure_logging(log_format: str, level: int = logging.INFO) -> None:
    """Route every logger (ours, Litestar's, uvicorn's) to one stderr handler in the chosen format."""
    handler = logging.StreamHandler(sys.stderr)
    if log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "litestar"):
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.propagate = True
    logging.getLogger("uvicorn.access").disabled = True  # its lines carry addresses and query strings
