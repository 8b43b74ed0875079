"""Error pages for URLs no view answers: JSON under /api/ and /hooks/ (clients branch on ``code``),
Django's HTML pages elsewhere (admin, browsable pages)."""

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
