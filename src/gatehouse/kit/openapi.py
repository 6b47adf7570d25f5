"""OpenAPI helpers: the error envelope documented on every operation."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any

from fastapi import FastAPI, Header
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from gatehouse.kit import deprecation
from gatehouse.kit.schemas import ErrorResponse

_DESCRIPTIONS = {
    400: "Invalid input (`VALIDATION_ERROR`, field paths in `details`)",
    401: "Missing, invalid or expired credentials",
    403: "Authenticated, but the role does not allow this",
    404: "No such resource",
    405: "Method not allowed",
    409: "Stale `If-Match` version, or a rule such as the last admin",
    413: "Request body over the size limit",
    415: "Request body is not JSON",
    429: "Rate limit exceeded",
    500: "Unexpected error; quote the request id",
    503: "A backing service (the database) is unavailable",
}

_REQUEST_ID_HEADER = {
    "X-Request-ID": {
        "description": "The request id, echoed or generated; quote it when reporting a problem",
        "schema": {"type": "string"},
    }
}


_RATE_LIMIT_HEADERS = {
    "X-RateLimit-Limit": {
        "description": "Requests allowed in the current window (absent when limits are off)",
        "schema": {"type": "integer", "minimum": 0},
    },
    "X-RateLimit-Remaining": {
        "description": "Requests left in the current window, after this one; never below 0",
        "schema": {"type": "integer", "minimum": 0},
    },
    "X-RateLimit-Reset": {
        "description": "When the window ends and the budget is whole again (epoch seconds)",
        "schema": {"type": "integer", "minimum": 0},
    },
}
_RETRY_AFTER_HEADER = {
    "Retry-After": {
        "description": "Seconds to wait before retrying (at least the time to the reset)",
        "schema": {"type": "integer", "minimum": 1},
    }
}
# Rate limited: every /api/ operation (the OpenAPI document itself is not).
_LIMITED_PREFIX = "/api/"
# Relative: the document is served by the Gatehouse it describes (GATEHOUSE_PUBLIC_URL).
SERVERS = [{"url": "/", "description": "This Gatehouse: the origin serving this document"}]
# pyproject.toml's license.
LICENSE = {"name": "Apache-2.0", "identifier": "Apache-2.0"}


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    return {code: {"model": ErrorResponse, "description": _DESCRIPTIONS[code]} for code in codes}


COMMON = (400, 413, 415, 429, 500, 503)
AUTHED = (*COMMON, 401, 403)


def _absent_not_null(schema: dict[str, Any]) -> None:
    """A header, query or path parameter is a string or absent, never JSON null: an
    optional one (`X | None = None` in Python) loses the null branch."""
    options = [option for option in schema.get("anyOf", []) if option != {"type": "null"}]
    if "anyOf" in schema and len(options) == 1:
        del schema["anyOf"]
        schema.update(options[0])


def _restore_null_examples(components: dict[str, Any]) -> None:
    """FastAPI drops every null from the document (`exclude_none`), the examples' too:
    an example's required, nullable property comes back as null, or the example no
    longer matches its own schema."""
    for schema in components.values():
        properties = schema.get("properties", {})
        nullable = {
            name
            for name in schema.get("required", [])
            if {"type": "null"} in properties.get(name, {}).get("anyOf", [])
        }
        for example in schema.get("examples", []):
            if isinstance(example, dict):
                for name in nullable:
                    example.setdefault(name, None)


def _describe_deprecation(operation: dict[str, Any], notice: dict[str, str]) -> None:
    said = (
        f"**Deprecated** since {notice['deprecated']}; it may stop working after "
        f"{notice['sunset']}. What replaces it: {notice['link']}"
    )
    operation["description"] = f"{operation.get('description', '')}\n\n{said}".strip()


def install(
    app: FastAPI,
    *,
    title: str,
    version: str,
    description: str,
    models: Sequence[type[BaseModel]] = (),
) -> None:
    """Replace FastAPI's 422 shape with our 400 envelope, and add the X-Request-ID header.

    `models` are schemas that operations reference by hand (a request body read from
    the raw request): FastAPI only collects the models of declared parameters.
    """

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(
            title=title,
            version=version,
            description=description,
            routes=app.routes,
            servers=SERVERS,
            license_info=LICENSE,
        )
        for route, path in schema.get("paths", {}).items():
            limited = route.startswith(_LIMITED_PREFIX)
            for operation in path.values():
                # Public: said explicitly, so a client or linter knows no token is wanted.
                operation.setdefault("security", [])
                notice = operation.get(deprecation.EXTENSION)
                if notice is not None:
                    _describe_deprecation(operation, notice)
                for parameter in operation.get("parameters", []):
                    _absent_not_null(parameter.get("schema", {}))
                responses = operation.get("responses", {})
                responses.pop("422", None)
                for status, response in responses.items():
                    headers = response.setdefault("headers", {})
                    headers.update(_REQUEST_ID_HEADER)
                    if limited:
                        headers.update(_RATE_LIMIT_HEADERS)
                    if status == "429":
                        headers.update(_RETRY_AFTER_HEADER)
                    if notice is not None:
                        headers.update(deprecation.response_headers(notice))
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        if models:
            _, extra = models_json_schema(
                [(model, "validation") for model in models],
                ref_template="#/components/schemas/{model}",
            )
            for name, definition in extra.get("$defs", {}).items():
                components.setdefault(name, definition)
        components.pop("HTTPValidationError", None)
        components.pop("ValidationError", None)
        _restore_null_examples(components)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


# Conditional writes (optimistic locking): the version a client read, sent back.
IfMatch = Annotated[
    str | None,
    Header(
        alias="If-Match",
        description="The ETag you read; a stale one answers 409 instead of overwriting",
    ),
]
ETAG_HEADER = {"ETag": {"description": "The resource version", "schema": {"type": "string"}}}
