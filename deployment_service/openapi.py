"""The OpenAPI schema tells the truth about errors.

Every API error is one JSON shape (:mod:`deployment_service.exceptions`), and some answers can come
from any operation: 401 without valid credentials, 403 (a session without its CSRF token), 413 for
a body over its limit, 415 for a body of the wrong media type, 400 for malformed input. Rather
than repeat those on each view, :func:`add_error_responses` (a drf-spectacular post-processing
hook) adds them, with the shared ``Error`` schema, to every operation that can answer them; and it
gives the ``Error`` schema to the 400/404/409 responses views declare by description only.
"""

from __future__ import annotations

from typing import Any

ERROR_COMPONENT = "Error"
_ERROR_REF = {"$ref": f"#/components/schemas/{ERROR_COMPONENT}"}


def _error_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "description": "Every error answer. `code` is stable: clients branch on it.",
        "properties": {
            "code": {"type": "string", "description": "Stable error code, e.g. `invalid_transition`."},
            "detail": {"type": "string", "description": "What went wrong, for a person."},
            "status": {
                "type": "string",
                "nullable": True,
                "description": "409 `invalid_transition`: the current status.",
            },
            "allowed": {
                "type": "array",
                "items": {"type": "string"},
                "description": "409 `invalid_transition`: what you may ask for now.",
            },
            "errors": {
                "type": "object",
                "additionalProperties": True,
                "description": "400 `invalid`: the errors per field.",
            },
            "limit": {"type": "integer", "description": "413 `body_too_large`: the limit in bytes."},
        },
        "required": ["code", "detail"],
        "additionalProperties": True,
    }


_GENERIC = {
    "400": "Malformed or invalid input.",
    "401": "No valid credentials: `Authorization: Token <key>` or a session.",
    "403": "Not allowed (a session request without its CSRF token).",
    "404": "No such object, or not one of yours.",
    "413": "The request body is over its limit.",
    "415": "The request body is not of a media type this operation takes.",
}
_WITH_BODY = {"post", "put", "patch"}


def _error_response(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": dict(_ERROR_REF)}}}


def add_error_responses(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    result.setdefault("components", {}).setdefault("schemas", {})[ERROR_COMPONENT] = _error_schema()
    for path, operations in result.get("paths", {}).items():
        for method, operation in operations.items():
            if method not in {"get", "post", "put", "patch", "delete", "head", "options"}:
                continue
            responses = operation.setdefault("responses", {})
            wanted = {"401", "403"}
            if "{" in path:
                wanted.add("404")
            if method in _WITH_BODY:
                wanted |= {"400", "413", "415"}
            if any(parameter.get("in") == "query" for parameter in operation.get("parameters", [])):
                wanted |= {"400", "404"}  # invalid filters; a page past the last is a 404
            for code in sorted(wanted):
                responses.setdefault(code, _error_response(_GENERIC[code]))
            for code, response in responses.items():
                if code.startswith(("4", "5")) and "content" not in response:
                    response["content"] = {"application/json": {"schema": dict(_ERROR_REF)}}
    return result
