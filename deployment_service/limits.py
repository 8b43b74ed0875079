"""Request bodies bounded before they are read, and JSON that cannot crash what reads it.

:class:`RequestBodyLimitMiddleware` runs first, before sessions, CSRF or any view can touch the
body. Each route has what its sender may send: API JSON ``TROY_API_MAX_BODY_BYTES``, SNS
deliveries ``TROY_SNS_MAX_BODY_BYTES``, GitHub deliveries ``TROY_GITHUB_MAX_BODY_BYTES``, the
release upload ``TROY_UPLOAD_MAX_BYTES`` (its upload handler counts the bytes again as they
stream), everything else (the admin) the API's limit. Multipart bodies are accepted only where a
file is expected (the release upload): elsewhere Django would spool every part to disk first.

* a Content-Length over the limit → 413 ``body_too_large`` with the ``limit``, nothing read;
* a body without Content-Length (``Transfer-Encoding: chunked``) is read here through a counter,
  at most limit + 1 bytes, into a spooled temporary file; over the limit → the same 413. Django
  reads nothing of a body without Content-Length, so such bodies would otherwise arrive empty;
* multipart where no file is expected → 415 ``unsupported_media_type``.

:func:`parse_json_body` is the one JSON decoder for request bodies (the API's parser and the
hooks): strict JSON, nesting at most :data:`JSON_MAX_DEPTH` levels, no NUL and no lone surrogates
in any string or key (PostgreSQL refuses both, and neither has a use in Troy's inputs).
"""

from __future__ import annotations

from collections.abc import Callable
import json
import re
import tempfile
from typing import Any

from django.conf import settings
from django.core.handlers.wsgi import LimitedStream
from django.http import HttpRequest, HttpResponse, JsonResponse
from rest_framework import status as http_status

from deployment_service.error_codes import ErrorCode
from deployment_service.exceptions import ApplicationError, InvalidInput

# Troy's inputs nest a few levels (a GitHub push: 5); CPython's decoder and everything that walks
# the result recurse, so a 1.9 KB body of 950 brackets must be refused before anything walks it.
JSON_MAX_DEPTH = 64
# Multipart boundaries and the small fields around a release's file (as releases.uploads allows).
UPLOAD_OVERHEAD_BYTES = 64 * 1024
_READ_CHUNK = 64 * 1024
_SPOOL_KEY = "troy.body_spool"
_SPOOL_IN_MEMORY = 1024 * 1024

_RELEASE_UPLOAD_RE = re.compile(r"^/api/v1/pipelines/[^/]+/releases/$")
_SURROGATE_RE = re.compile("[\ud800-\udfff]")


class BodyTooLarge(ApplicationError):
    code = ErrorCode.BODY_TOO_LARGE
    http_status = http_status.HTTP_413_REQUEST_ENTITY_TOO_LARGE


class InvalidJson(InvalidInput):
    code = ErrorCode.INVALID_JSON


class JsonTooDeep(InvalidJson):
    code = ErrorCode.JSON_TOO_DEEP


# --- limits per route -----------------------------------------------------------------------------


def body_limit_for(request: HttpRequest) -> tuple[int, bool]:
    """The most bytes this request's body may have, and whether it may be multipart."""
    path = request.path_info
    if path.startswith("/hooks/sns/"):
        return settings.TROY_SNS_MAX_BODY_BYTES, False
    if path.startswith("/hooks/github/"):
        return settings.TROY_GITHUB_MAX_BODY_BYTES, False
    if request.method == "POST" and _RELEASE_UPLOAD_RE.match(path):
        return settings.TROY_UPLOAD_MAX_BYTES + UPLOAD_OVERHEAD_BYTES, True
    return settings.TROY_API_MAX_BODY_BYTES, False


def _too_large(limit: int) -> JsonResponse:
    error = BodyTooLarge(f"The request body is larger than the limit of {limit} bytes.", extra={"limit": limit})
    return JsonResponse(error.as_dict(), status=error.http_status)


class RequestBodyLimitMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        refusal = self.refusal(request)
        if refusal is not None:
            return refusal
        try:
            return self.get_response(request)
        finally:
            spool = request.META.get(_SPOOL_KEY)
            if spool is not None:
                spool.close()  # the view has answered: nothing reads the body after it

    def refusal(self, request: HttpRequest) -> HttpResponse | None:
        limit, multipart_allowed = body_limit_for(request)
        if (request.content_type or "").startswith("multipart/") and not multipart_allowed:
            return JsonResponse(
                {
                    "code": ErrorCode.UNSUPPORTED_MEDIA_TYPE,
                    "detail": f"{request.path_info} does not take multipart bodies; send JSON.",
                },
                status=http_status.HTTP_415_UNSUPPORTED_MEDIA_TYPE,
            )
        raw_length = request.META.get("CONTENT_LENGTH") or ""
        if raw_length:
            try:
                length = int(raw_length)
            except ValueError:
                return JsonResponse(
                    {"code": ErrorCode.INVALID_CONTENT_LENGTH, "detail": "Content-Length is not a number."}, status=400
                )
            # The release upload's own handler refuses an over-long Content-Length (upload_too_large)
            # and counts the bytes as they stream; the other routes are refused here.
            return _too_large(limit) if length > limit and not multipart_allowed else None
        if self._has_unlengthed_body(request):
            return self._spool_unlengthed_body(request, limit)
        return None

    @staticmethod
    def _has_unlengthed_body(request: HttpRequest) -> bool:
        chunked = "chunked" in request.META.get("HTTP_TRANSFER_ENCODING", "").lower()
        return chunked or bool(request.META.get("wsgi.input_terminated"))

    @staticmethod
    def _spool_unlengthed_body(request: HttpRequest, limit: int) -> HttpResponse | None:
        """Read the body through a counter, stop one byte past the limit, and hand Django the
        spooled copy with its now known length (its request stream needs one)."""
        source = request.META["wsgi.input"]
        spool = tempfile.SpooledTemporaryFile(max_size=_SPOOL_IN_MEMORY, dir=settings.FILE_UPLOAD_TEMP_DIR)  # noqa: SIM115 (the request owns it from here)
        received = 0
        while received <= limit:
            chunk = source.read(min(_READ_CHUNK, limit + 1 - received))
            if not chunk:
                break
            received += len(chunk)
            spool.write(chunk)
        if received > limit:
            spool.close()
            return _too_large(limit)
        spool.seek(0)
        request.META["wsgi.input"] = spool
        request.META["CONTENT_LENGTH"] = str(received)
        request._stream = LimitedStream(spool, received)  # type: ignore[assignment,arg-type]
        request._read_started = False  # type: ignore[attr-defined]
        request.META[_SPOOL_KEY] = spool
        return None


# --- JSON -----------------------------------------------------------------------------------------


class _JsonProblem(Exception):
    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _string_problem(value: str) -> str | None:
    if "\x00" in value:
        return "a NUL character (\\u0000)"
    if _SURROGATE_RE.search(value):
        return "a lone surrogate (\\ud800-\\udfff)"
    return None


def _json_value_check(value: Any) -> None:
    """Walks with a list, not recursion, so the check itself cannot overflow."""
    pending: list[tuple[Any, int]] = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, str):
            problem = _string_problem(item)
            if problem:
                raise _JsonProblem("invalid_json", f"The JSON holds {problem}.")
            continue
        if not isinstance(item, (dict, list)):
            continue
        if depth > JSON_MAX_DEPTH:
            raise _JsonProblem("json_too_deep", f"The JSON nests deeper than {JSON_MAX_DEPTH} levels.")
        if isinstance(item, dict):
            pending.extend((key, depth) for key in item)
            pending.extend((child, depth + 1) for child in item.values())
        else:
            pending.extend((child, depth + 1) for child in item)


def _json_decode(body: bytes | str) -> Any:
    try:
        text = body.decode("utf-8") if isinstance(body, bytes) else body
        value = json.loads(text, parse_constant=_reject_constant)
    except RecursionError:
        raise _JsonProblem("json_too_deep", f"The JSON nests deeper than {JSON_MAX_DEPTH} levels.") from None
    except (UnicodeDecodeError, ValueError) as exc:
        raise _JsonProblem("invalid_json", f"The body is not JSON: {exc}") from None
    _json_value_check(value)
    return value


_ERRORS_BY_REASON: dict[str, type[ApplicationError]] = {"invalid_json": InvalidJson, "json_too_deep": JsonTooDeep}


def parse_json_body(body: bytes | str, *, error: type[ApplicationError] | None = None) -> Any:
    """The body's JSON value: strict JSON, nesting at most :data:`JSON_MAX_DEPTH` levels, no NUL
    and no lone surrogate in any string or key. Otherwise a 400: :class:`InvalidJson` or
    :class:`JsonTooDeep`, or the caller's own ``error`` class (the hooks keep their codes) with
    the why in ``reason``."""
    try:
        return _json_decode(body)
    except _JsonProblem as problem:
        extra: dict[str, Any] = {"reason": problem.reason}
        if problem.reason == "json_too_deep":
            extra["max_depth"] = JSON_MAX_DEPTH
        raise (error or _ERRORS_BY_REASON[problem.reason])(problem.detail, extra=extra) from None
