"""Error pages for URLs no view answers: JSON under /api/ and /hooks/ (clients branch on ``code``),
Django's HTML pages elsewhere (admin, browsable pages)."""

from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views import defaults

from deployment_service.error_codes import ErrorCode

_JSON_PREFIXES = ("/api/", "/hooks/")


def _wants_json(request: HttpRequest) -> bool:
    return request.path.startswith(_JSON_PREFIXES)


def not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    if _wants_json(request):
        return JsonResponse({"code": ErrorCode.NOT_FOUND, "detail": f"No such endpoint: {request.path}"}, status=404)
    return defaults.page_not_found(request, exception)


def server_error(request: HttpRequest) -> HttpResponse:
    if _wants_json(request):
        return JsonResponse(
            {"code": ErrorCode.SERVER_ERROR, "detail": "Internal server error; it has been logged."}, status=500
        )
    return defaults.server_error(request)


def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    """Django's own refusals of a request (too many fields, a body over DATA_UPLOAD_MAX_MEMORY_SIZE,
    a bad Host): JSON under /api/ and /hooks/ like every other answer there."""
    if not _wants_json(request):
        return defaults.bad_request(request, exception)
    if isinstance(exception, RequestDataTooBig):
        return JsonResponse({"code": ErrorCode.BODY_TOO_LARGE, "detail": str(exception)}, status=413)
    return JsonResponse({"code": ErrorCode.BAD_REQUEST, "detail": str(exception) or "Bad request."}, status=400)
