"""JSON request bodies are read as strictly as the OpenAPI document describes them.

Litestar converts a handler's `data` with msgspec in lax mode (it must, for query strings),
so a JSON body with `"replace": 0` or `"knocked_at": 0` was silently coerced to `false` or
to 1970-01-01 although the document says boolean and date-time. This `before_request` hook
decodes the body once more in strict mode against the handler's declared type and answers
422 problem details naming the field. Bodies that are not JSON at all are left to Litestar;
multipart uploads and handlers that read the raw request (sync) are not touched.
"""

from __future__ import annotations

import re
from typing import Any

import msgspec
from litestar import Request
from litestar.enums import RequestEncodingType
from litestar.exceptions import ValidationException

_LOCATION = re.compile(r" - at `\$\.?([^`]*)`$")


async def refuse_loose_json_bodies(request: Request[Any, Any, Any]) -> None:
    """Before a handler runs: its JSON body must decode strictly as the declared type (else 422)."""
    data = request.route_handler.parsed_fn_signature.parameters.get("data")
    if data is None:
        return
    encoding = getattr(data.kwarg_definition, "media_type", RequestEncodingType.JSON)
    if encoding != RequestEncodingType.JSON:
        return
    body = await request.body()
    if not body.strip():
        return
    try:
        body.decode("utf-8")  # msgspec may report a type error before it reads a bad string: not UTF-8 is 400 first
        msgspec.json.decode(body, type=data.annotation, strict=True)
    except msgspec.ValidationError as exc:
        message = str(exc)
        location = _LOCATION.search(message)
        field = location.group(1) if location and location.group(1) else "data"
        raise ValidationException(
            detail="The request body does not match its schema.",
            extra=[{"key": field, "message": _LOCATION.sub("", message), "source": "body"}],
        ) from exc
    except (ValueError, RecursionError):
        # Not JSON, not UTF-8, or nested too deep: left to Litestar's own reading of the body and
        # to server/errors.py, so this hook never answers differently from a request without it.
        return
