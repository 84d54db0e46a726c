"""The OpenAPI document describes every response the server gives, derived in one place from the routes.

Litestar documents each route's success response (and a 400 in its own error shape). Our
errors are RFC 9457 problem details (`application/problem+json`, server/errors.py), and which
of them a route can answer follows from what the route declares:

- any input (path, query, header or cookie parameters, a body, or the raw request): 400 and 422;
- authentication (every route not marked `exclude_from_auth`): 401, and 403 (guards, and
  device tokens outside the routes a device may use);
- path parameters: 404 (also what a caller gets for another campaign's or canvasser's object);
- writes (POST, PUT, PATCH, DELETE): 409 (a clash with stored data) and, with a body, 413;
- a `rate_limit` opt: 429; the sync protocol (`rate_limit: "sync"`): 426 upgrade-required, and
  its required `X-Canvass-Protocol` header;
- anything else a handler can answer is named in its `opt={"problems": (...)}` (e.g. 503 on /ready).

Request Structs with `forbid_unknown_fields` are closed (`additionalProperties: false`) and an
upload's file part is required, as the server enforces. Handlers whose media type is GeoJSON get the FeatureCollection schema for their success
response (they return the encoded file as bytes). Routes excluded from authentication are
documented with `security: []`. A handler's own `responses=` always wins.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import msgspec
from litestar import Litestar
from litestar._kwargs import KwargsModel
from litestar._openapi.schema_generation import SchemaCreator
from litestar._openapi.schema_generation.plugins.struct import StructSchemaPlugin
from litestar.di import Provide
from litestar.enums import ParamType
from litestar.handlers import HTTPRouteHandler
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import OpenAPIType, Operation, Parameter, RequestBody, Schema
from litestar.routes import HTTPRoute
from litestar.typing import FieldDefinition

from server.errors import PROBLEM_JSON
from sync.protocol import PROTOCOL_HEADER, SUPPORTED_PROTOCOL_VERSIONS

GEOJSON = "application/geo+json"
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
PROBLEM_DESCRIPTIONS = {
    400: "Malformed request (a parameter or body that does not parse).",
    401: "Missing, expired or revoked credentials.",
    403: "The caller's role or token does not allow this.",
    404: "No such object here (or not visible to the caller).",
    409: "The request conflicts with stored data.",
    413: "The body, upload or geometry is over the configured limit.",
    422: "Well-formed but not acceptable input (field errors in `errors`).",
    426: "The client's sync protocol version is not supported: upgrade, keep the queue.",
    429: "Too many requests or sign-in attempts: wait (see Retry-After when given).",
    503: "Not ready: the database is unreachable or not migrated.",
}


class FieldProblem(msgspec.Struct):
    """One field's error inside a problem."""

    field: str = ""
    message: str = ""
    source: str = ""


class ProblemDetail(msgspec.Struct):
    """RFC 9457 problem details: the only error shape the API answers with (further members may follow)."""

    type: str
    title: str
    status: int
    detail: str
    instance: str
    errors: list[FieldProblem] = msgspec.field(default_factory=list)


class GeoJSONFeature(msgspec.Struct):
    """A GeoJSON Feature (RFC 7946): a geometry (or null) and its properties."""

    type: Literal["Feature"]
    geometry: dict[str, Any] | None
    properties: dict[str, Any] | None


class GeoJSONFeatureCollection(msgspec.Struct):
    """A GeoJSON FeatureCollection (RFC 7946); exports may add `name`, `crs` and `bbox`."""

    type: Literal["FeatureCollection"]
    features: list[GeoJSONFeature]


class ClosedStructSchemaPlugin(StructSchemaPlugin):
    """Request Structs that refuse unknown fields (`forbid_unknown_fields=True`) are documented with `additionalProperties: false`."""

    def to_openapi_schema(self, field_definition: FieldDefinition, schema_creator: SchemaCreator) -> Schema:
        """Litestar's Struct schema, closed when the Struct is."""
        schema = super().to_openapi_schema(field_definition, schema_creator)
        config = getattr(field_definition.type_, "__struct_config__", None)
        if config is not None and config.forbid_unknown_fields:
            schema.additional_properties = False
        return schema


@dataclass
class DocumentedOperation(Operation):
    """An operation as the server behaves: an upload's file part is required, an optional body is not."""

    def __post_init__(self) -> None:
        if not isinstance(self.request_body, RequestBody):
            return
        for media_type, content in self.request_body.content.items():
            schema = content.schema
            if media_type.startswith("multipart/") and isinstance(schema, Schema) and schema.properties and not schema.required:
                schema.required = sorted(schema.properties)
            if isinstance(schema, Schema) and any(isinstance(s, Schema) and s.type == OpenAPIType.NULL for s in schema.one_of or ()):
                self.request_body.required = False  # `data: X | None = None`: the body may be left out


@dataclass
class SyncOperation(DocumentedOperation):
    """A sync operation: the protocol version header is required (without a supported one the answer is 426)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        names = {getattr(parameter, "name", "").lower() for parameter in self.parameters or []}
        if PROTOCOL_HEADER.lower() not in names:
            header = Parameter(
                name=PROTOCOL_HEADER, param_in=ParamType.HEADER, required=True,
                schema=Schema(type=OpenAPIType.INTEGER, enum=sorted(SUPPORTED_PROTOCOL_VERSIONS)),
                description="The sync protocol version the client speaks (docs/sync-protocol.md).",
            )
            self.parameters = [*(self.parameters or []), header]


@dataclass
class PublicOperation(DocumentedOperation):
    """An operation that needs no credentials: `security: []` overrides the document's bearer requirement."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self.security = []


@dataclass(frozen=True)
class _Facts:
    method: str
    public: bool
    has_path_params: bool
    has_input: bool
    has_body: bool
    rate_limit: str | None
    extra: tuple[int, ...]


def _facts(route: HTTPRoute, handler: HTTPRouteHandler, kwargs: KwargsModel, method: str) -> _Facts:
    reserved = kwargs.expected_reserved_kwargs
    reads_request = "request" in reserved
    has_body = "data" in reserved or bool(kwargs.expected_form_data) or bool(kwargs.expected_msgpack_data) or (
        reads_request and method in WRITE_METHODS)
    parameters = (kwargs.expected_path_params, kwargs.expected_query_params, kwargs.expected_header_params, kwargs.expected_cookie_params)
    opt = handler.opt
    return _Facts(
        method=method,
        public=bool(opt.get("exclude_from_auth")),
        has_path_params=bool(route.path_parameters),
        has_input=any(parameters) or has_body or reads_request,
        has_body=has_body,
        rate_limit=opt.get("rate_limit"),
        extra=tuple(opt.get("problems", ())),
    )


def problem_statuses(facts: _Facts) -> set[int]:
    """The problem statuses a route can answer, from what it declares (see the module docstring)."""
    statuses = set(facts.extra)
    if facts.has_input:
        statuses |= {400, 422}
    if not facts.public:
        statuses |= {401, 403}
    if facts.has_path_params:
        statuses.add(404)
    if facts.method in WRITE_METHODS:
        statuses.add(409)
        if facts.has_body:
            statuses.add(413)
    if facts.rate_limit:
        statuses.add(429)
    if facts.rate_limit == "auth":
        statuses.add(401)  # wrong credentials, a spent refresh token, an invalid join code
    if facts.rate_limit == "sync":
        statuses.add(426)
    return statuses


def _problem_response(status: int) -> ResponseSpec:
    return ResponseSpec(
        data_container=ProblemDetail, media_type=PROBLEM_JSON, generate_examples=False,
        description=PROBLEM_DESCRIPTIONS.get(status, "Problem details."),
    )


def _repair_options_allow(route: HTTPRoute) -> None:
    """Point the route's automatic OPTIONS handler at the route it serves, so `Allow` names all its methods.

    Litestar builds that handler as a closure over the route object it was made for; routes
    merged later (two controllers, or GET and POST of one path registered apart) and the app's
    copies kept the first object, and answered `Allow: OPTIONS, POST` for a GET-and-POST path.
    """
    entry = route.route_handler_map.get("OPTIONS")
    handler = entry[0] if entry else None
    function = getattr(handler, "fn", None)
    if function is None or getattr(function, "__name__", "") != "options_handler":
        return
    for cell in function.__closure__ or ():
        if isinstance(cell.cell_contents, HTTPRoute):
            cell.cell_contents = route


def geojson_response(description: str, media_type: str = "application/json") -> ResponseSpec:
    """A success response whose body is a GeoJSON FeatureCollection (for handlers typed as plain dicts)."""
    return ResponseSpec(data_container=GeoJSONFeatureCollection, media_type=media_type, generate_examples=False, description=description)


def documented_body(struct: type) -> dict[str, Provide]:
    """Route dependencies that declare ``struct`` as the JSON request body of a handler that reads
    the raw request itself (the sync push and pull: gzip, one mutation decoded at a time).

    Litestar documents a request body from the ``data`` parameter of the handler or of one of its
    dependencies; the handler never asks for this one, so it is never resolved and the body is
    never parsed twice."""

    def body(data: Any) -> None:  # pragma: no cover - never resolved, documents the body only
        return None

    body.__annotations__ = {"data": struct, "return": None}
    return {"documented_body": Provide(body, sync_to_thread=False)}


def document_responses(app: Litestar) -> None:
    """Declare every route's problem responses (and GeoJSON bodies, and public routes) before the schema is built."""
    for route in app.routes:
        if not isinstance(route, HTTPRoute):
            continue
        _repair_options_allow(route)
        for method, (handler, kwargs) in route.route_handler_map.items():
            if not handler.resolve_include_in_schema():
                continue
            facts = _facts(route, handler, kwargs, str(method))
            responses: dict[int, ResponseSpec] = {status: _problem_response(status) for status in sorted(problem_statuses(facts))}
            media_type = str(handler.media_type)
            if media_type.startswith(GEOJSON):
                responses[handler.status_code] = geojson_response("A GeoJSON FeatureCollection (WGS84 longitude/latitude).", GEOJSON)
            handler.responses = {**responses, **(handler.responses or {})}
            handler.operation_class = (
                PublicOperation if facts.public else SyncOperation if facts.rate_limit == "sync" else DocumentedOperation
            )
