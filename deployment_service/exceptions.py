"""One error shape for the whole API: ``{"code": ..., "detail": ...}`` plus context.

Domain errors subclass :class:`ApplicationError` with a stable ``code`` and an HTTP status.
The DRF exception handler below maps them, DRF's own errors and django-fsm's errors to JSON.
Unknown exceptions are left to DRF/Django: they stay 500 and are logged, never swallowed.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from django_fsm import ConcurrentTransition, TransitionNotAllowed
from rest_framework import exceptions as drf_exceptions
from rest_framework import status as http_status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler


class ApplicationError(Exception):
    """Root of every domain error. ``code`` is stable; clients branch on it."""

    code = "application_error"
    http_status = http_status.HTTP_400_BAD_REQUEST

    def __init__(self, detail: str, *, extra: dict[str, Any] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra or {}

    def as_dict(self) -> dict[str, Any]:
        return {"code": self.code, "detail": self.detail, **self.extra}


class InvalidTransition(ApplicationError):
    """The object is not in a status from which the asked-for change is legal."""

    code = "invalid_transition"
    http_status = http_status.HTTP_409_CONFLICT

    def __init__(self, detail: str, *, status: str, allowed: list[str]) -> None:
        super().__init__(detail, extra={"status": status, "allowed": allowed})
        self.status = status
        self.allowed = allowed


class Conflict(ApplicationError):
    code = "conflict"
    http_status = http_status.HTTP_409_CONFLICT


class NotFound(ApplicationError):
    code = "not_found"
    http_status = http_status.HTTP_404_NOT_FOUND


class InvalidInput(ApplicationError):
    code = "invalid"
    http_status = http_status.HTTP_400_BAD_REQUEST


_DRF_CODES = {
    drf_exceptions.NotAuthenticated: "not_authenticated",
    drf_exceptions.AuthenticationFailed: "authentication_failed",
    drf_exceptions.PermissionDenied: "permission_denied",
    drf_exceptions.NotFound: "not_found",
    drf_exceptions.MethodNotAllowed: "method_not_allowed",
    drf_exceptions.NotAcceptable: "not_acceptable",
    drf_exceptions.UnsupportedMediaType: "unsupported_media_type",
    drf_exceptions.Throttled: "throttled",
    drf_exceptions.ParseError: "parse_error",
    drf_exceptions.ValidationError: "invalid",
}


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, ApplicationError):
        return Response(exc.as_dict(), status=exc.http_status)
    if isinstance(exc, (TransitionNotAllowed, ConcurrentTransition)):
        # Services raise InvalidTransition themselves; this catches a race that the row lock
        # did not (ConcurrentTransitionMixin) so it still answers 409 rather than 500.
        obj = getattr(exc, "object", None)
        current = getattr(obj, "status", None)
        return Response(
            {
                "code": "invalid_transition",
                "detail": str(exc) or "The status changed meanwhile.",
                "status": current,
                "allowed": [],
            },
            status=http_status.HTTP_409_CONFLICT,
        )
    if isinstance(exc, DjangoValidationError):
        exc = drf_exceptions.ValidationError(detail=getattr(exc, "message_dict", None) or exc.messages)
    elif isinstance(exc, Http404):
        exc = drf_exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = drf_exceptions.PermissionDenied()

    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    code = next((c for cls, c in _DRF_CODES.items() if isinstance(exc, cls)), "error")
    if isinstance(exc, drf_exceptions.ValidationError):
        response.data = {"code": "invalid", "detail": "Invalid input.", "errors": response.data}
    else:
        detail = response.data.get("detail") if isinstance(response.data, dict) else response.data
        response.data = {"code": code, "detail": str(detail)}
    return response
