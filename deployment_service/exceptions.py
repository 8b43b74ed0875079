"""One error shape for the whole API: ``{"code": ..., "detail": ...}`` plus context.

Domain errors subclass :class:`ApplicationError` with a stable ``code`` and an HTTP status.
The DRF exception handler below maps them, DRF's own errors and django-fsm's errors to JSON.
Unknown exceptions are left to DRF/Django: they stay 500 and are logged, never swallowed.

Every code is a member of :class:`~deployment_service.error_codes.ErrorCode` (the registry that
``docs/errors.md`` is checked against); defining a subclass with an unregistered code, or with a
status its code is not registered for, fails at import.

A 400 ``invalid`` body is ``{"code": "invalid", "detail": ..., "errors": {field: [message, ...]},
"error_codes": {field: [code, ...]}}``: ``error_codes`` mirrors ``errors`` key for key (nested
serializers nest the same way), with each message's code in its place.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from django_fsm import ConcurrentTransition, TransitionNotAllowed
from rest_framework import exceptions as drf_exceptions
from rest_framework import status as http_status
from rest_framework.fields import get_error_detail
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.views import exception_handler as drf_exception_handler

from deployment_service.error_codes import ErrorCode, Kind


class ApplicationError(Exception):
    """Root of every domain error. ``code`` is stable; clients branch on it."""

    code: ErrorCode = ErrorCode.APPLICATION_ERROR
    http_status: int = http_status.HTTP_400_BAD_REQUEST

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if not isinstance(cls.code, ErrorCode) or cls.code.kind != Kind.BODY:
            raise TypeError(f"{cls.__qualname__}.code must be a body code of ErrorCode, not {cls.code!r}")
        if cls.http_status not in cls.code.statuses:
            raise TypeError(
                f"{cls.__qualname__} answers {cls.http_status}, but {cls.code.value!r} is registered for "
                f"{cls.code.statuses}"
            )

    def __init__(self, detail: str, *, extra: dict[str, Any] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra or {}

    def as_dict(self) -> dict[str, Any]:
        return {"code": self.code, "detail": self.detail, **self.extra}


class InvalidTransition(ApplicationError):
    """The object is not in a status from which the asked-for change is legal."""

    code = ErrorCode.INVALID_TRANSITION
    http_status = http_status.HTTP_409_CONFLICT

    def __init__(self, detail: str, *, status: str, allowed: list[str]) -> None:
        super().__init__(detail, extra={"status": status, "allowed": allowed})
        self.status = status
        self.allowed = allowed


class Conflict(ApplicationError):
    code = ErrorCode.CONFLICT
    http_status = http_status.HTTP_409_CONFLICT


class NotFound(ApplicationError):
    code = ErrorCode.NOT_FOUND
    http_status = http_status.HTTP_404_NOT_FOUND


class InvalidInput(ApplicationError):
    code = ErrorCode.INVALID
    http_status = http_status.HTTP_400_BAD_REQUEST


_DRF_CODES = {
    drf_exceptions.NotAuthenticated: ErrorCode.NOT_AUTHENTICATED,
    drf_exceptions.AuthenticationFailed: ErrorCode.AUTHENTICATION_FAILED,
    drf_exceptions.PermissionDenied: ErrorCode.PERMISSION_DENIED,
    drf_exceptions.NotFound: ErrorCode.NOT_FOUND,
    drf_exceptions.MethodNotAllowed: ErrorCode.METHOD_NOT_ALLOWED,
    drf_exceptions.NotAcceptable: ErrorCode.NOT_ACCEPTABLE,
    drf_exceptions.UnsupportedMediaType: ErrorCode.UNSUPPORTED_MEDIA_TYPE,
    drf_exceptions.Throttled: ErrorCode.THROTTLED,
    drf_exceptions.ParseError: ErrorCode.PARSE_ERROR,
    drf_exceptions.ValidationError: ErrorCode.INVALID,
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
                "code": ErrorCode.INVALID_TRANSITION,
                "detail": str(exc) or "The status changed meanwhile.",
                "status": current,
                "allowed": [],
            },
            status=http_status.HTTP_409_CONFLICT,
        )
    if isinstance(exc, DjangoValidationError):
        # get_error_detail keeps each message's code (as DRF's own field validation does).
        exc = drf_exceptions.ValidationError(detail=get_error_detail(exc))
    elif isinstance(exc, Http404):
        exc = drf_exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = drf_exceptions.PermissionDenied()

    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    code = next((c for cls, c in _DRF_CODES.items() if isinstance(exc, cls)), ErrorCode.ERROR)
    if isinstance(exc, drf_exceptions.ValidationError):
        errors, codes = response.data, exc.get_codes()
        if not isinstance(errors, dict):  # errors of no one field (a filter, a service): DRF's key for them
            errors, codes = {api_settings.NON_FIELD_ERRORS_KEY: errors}, {api_settings.NON_FIELD_ERRORS_KEY: codes}
        response.data = {"code": ErrorCode.INVALID, "detail": "Invalid input.", "errors": errors, "error_codes": codes}
    else:
        detail = response.data.get("detail") if isinstance(response.data, dict) else response.data
        response.data = {"code": code, "detail": str(detail)}
    return response
