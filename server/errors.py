"""Domain errors and their one mapping to HTTP: RFC 9457 problem details for every error."""

from __future__ import annotations

import logging
from typing import Any

from litestar import MediaType, Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR
from sqlalchemy.exc import DataError, IntegrityError

logger = logging.getLogger("canvass.errors")

PROBLEM_JSON = "application/problem+json"
PROBLEM_TYPE_BASE = "https://canvass.invalid/problems/"


class DomainError(Exception):
    """Base of every error our services raise; carries an HTTP status and a problem type slug."""

    status_code: int = 400
    title: str = "Bad request"
    slug: str = "bad-request"

    def __init__(self, detail: str, *, errors: list[dict[str, Any]] | None = None, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = errors
        self.extra = extra


class InvalidInput(DomainError):
    """Input that is well-formed but not acceptable (a bad row, a bad polygon, a bad size)."""

    status_code = 422
    title = "Invalid input"
    slug = "invalid-input"


class NotFound(DomainError):
    """The thing asked for does not exist (or is not visible to the caller)."""

    status_code = 404
    title = "Not found"
    slug = "not-found"


class Unauthenticated(DomainError):
    """Missing, expired, revoked or wrong credentials."""

    status_code = 401
    title = "Authentication required"
    slug = "unauthenticated"


class Forbidden(DomainError):
    """The caller is known but their role or assignment does not allow this."""

    status_code = 403
    title = "Forbidden"
    slug = "forbidden"


class ConflictError(DomainError):
    """The request clashes with current state (a duplicate email, a used code)."""

    status_code = 409
    title = "Conflict"
    slug = "conflict"


class PayloadTooLarge(DomainError):
    """A body, upload or geometry beyond the configured limits."""

    status_code = 413
    title = "Payload too large"
    slug = "payload-too-large"


class UpgradeRequired(DomainError):
    """The client's protocol version is no longer supported; it must keep its queue and upgrade."""

    status_code = 426
    title = "Upgrade required"
    slug = "upgrade-required"


class TooManyRequests(DomainError):
    """Rate limit or lockout."""

    status_code = 429
    title = "Too many requests"
    slug = "too-many-requests"


_TITLES = {
    400: ("Bad request", "bad-request"),
    401: ("Authentication required", "unauthenticated"),
    403: ("Forbidden", "forbidden"),
    404: ("Not found", "not-found"),
    405: ("Method not allowed", "method-not-allowed"),
    409: ("Conflict", "conflict"),
    413: ("Payload too large", "payload-too-large"),
    415: ("Unsupported media type", "unsupported-media-type"),
    422: ("Invalid input", "invalid-input"),
    429: ("Too many requests", "too-many-requests"),
    500: ("Internal server error", "internal-error"),
    503: ("Service unavailable", "unavailable"),
}


def problem(
    status: int,
    detail: str,
    *,
    instance: str = "",
    title: str | None = None,
    slug: str | None = None,
    errors: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> Response[dict[str, Any]]:
    """Build one RFC 9457 problem-details response; the only error shape the API emits."""
    default_title, default_slug = _TITLES.get(status, ("Error", "error"))
    body: dict[str, Any] = {
        "type": PROBLEM_TYPE_BASE + (slug or default_slug),
        "title": title or default_title,
        "status": status,
        "detail": detail,
        "instance": instance,
    }
    if errors:
        body["errors"] = errors
    body.update(extra)
    return Response(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def _validation_errors(exc: ValidationException) -> list[dict[str, Any]]:
    extra = exc.extra if isinstance(exc.extra, list) else ([exc.extra] if exc.extra else [])
    errors = []
    for item in extra:
        if isinstance(item, dict):
            field = item.get("key") or item.get("field") or ""
            errors.append({"field": str(field), "message": str(item.get("message", "")), "source": str(item.get("source", ""))})
    return errors


def _retry_after(status: int, seconds: object) -> dict[str, str] | None:
    """A `Retry-After` header for a 429 that knows how long to wait."""
    return {"retry-after": str(max(1, int(seconds)))} if status == 429 and isinstance(seconds, int | float) else None


def handle_domain_error(request: Request[Any, Any, Any], exc: DomainError) -> Response[dict[str, Any]]:
    """Map a DomainError raised anywhere in a request to problem details (a 429 with `retry_after` also says it in `Retry-After`)."""
    return problem(
        exc.status_code, exc.detail, instance=request.url.path, title=exc.title, slug=exc.slug, errors=exc.errors,
        headers=_retry_after(exc.status_code, exc.extra.get("retry_after")), **exc.extra,
    )


def handle_http_exception(request: Request[Any, Any, Any], exc: HTTPException) -> Response[dict[str, Any]]:
    """Map Litestar's own exceptions (404 route, 405, 401 from auth, 413, validation) to problem details."""
    errors = _validation_errors(exc) if isinstance(exc, ValidationException) else None
    detail = exc.detail
    if isinstance(exc, ValidationException) and errors:
        detail = "Validation failed: " + "; ".join(f"{e['field'] or 'body'}: {e['message']}" for e in errors)
    status = exc.status_code
    if isinstance(exc, ValidationException) and status == 400 and errors:
        status = 422 if any(e["source"] == "body" for e in errors) else 400
    headers = dict(exc.headers or {})
    if status == 429 and "retry-after" not in {k.lower() for k in headers}:
        # Litestar's rate limiter says when the window resets (RateLimit-Reset, seconds); clients read Retry-After.
        reset = next((v for k, v in headers.items() if k.lower() == "ratelimit-reset"), "60")
        headers["retry-after"] = str(max(1, int(reset))) if str(reset).isdigit() else "60"
    return problem(status, detail, instance=request.url.path, errors=errors, headers=headers or None)


def handle_out_of_range(request: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, Any]]:
    """A number too large for the database (an id like 10**30 in a path or body): 422, not 500."""
    return problem(422, "A number in the request is out of range.", instance=request.url.path)


def handle_undecodable_body(request: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, Any]]:
    """A body that is not UTF-8, or JSON nested deeper than the decoder goes: 400, not 500."""
    if isinstance(exc, RecursionError):
        return problem(400, "The request body is nested too deeply to read.", instance=request.url.path)
    return problem(400, "The request body is not valid UTF-8.", instance=request.url.path)


def handle_integrity_error(request: Request[Any, Any, Any], exc: IntegrityError) -> Response[dict[str, Any]]:
    """A write that breaks a database constraint (a reference to something that does not exist, a duplicate): 409."""
    logger.info("integrity error on %s %s: %s", request.method, request.url.path, exc.orig)
    return problem(409, "The request conflicts with existing data (a missing reference or a duplicate).", instance=request.url.path, slug="conflict", title="Conflict")


def handle_unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, Any]]:
    """Log an unexpected error and answer 500 problem details without leaking internals."""
    if isinstance(exc, RuntimeError) and isinstance(exc.__cause__, StopIteration):
        # Litestar's multipart extractor (`next(v for v in form_values ... UploadFile)`) raises this when a
        # multipart body has no file part; it is the client's mistake, not ours.
        return problem(400, "The multipart body has no file part.", instance=request.url.path)
    logger.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return problem(HTTP_500_INTERNAL_SERVER_ERROR, "An unexpected error occurred.", instance=request.url.path)


EXCEPTION_HANDLERS = {
    DomainError: handle_domain_error,
    HTTPException: handle_http_exception,
    OverflowError: handle_out_of_range,
    DataError: handle_out_of_range,
    IntegrityError: handle_integrity_error,
    UnicodeDecodeError: handle_undecodable_body,
    RecursionError: handle_undecodable_body,
    Exception: handle_unexpected,
}

__all__ = ["EXCEPTION_HANDLERS", "MediaType", "problem"]
