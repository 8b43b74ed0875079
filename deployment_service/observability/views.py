"""``GET /metrics``: Prometheus text for this web tier (django-prometheus request metrics,
Troy's own series and the database gauges the apps register).

Off unless ``TROY_METRICS=1`` (404, as if the URL did not exist). With ``TROY_METRICS_TOKEN``
set, a scrape must send ``Authorization: Bearer <token>``; without it, keep the path off the
public listener (the load balancer or ingress should not route it).
"""

from __future__ import annotations

import hmac

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from deployment_service.error_codes import ErrorCode
from deployment_service.observability.metrics import scrape_registry


def _token_matches(request: HttpRequest, token: str) -> bool:
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode())


@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    if not settings.TROY_METRICS:
        return JsonResponse({"code": ErrorCode.NOT_FOUND, "detail": f"No such endpoint: {request.path}"}, status=404)
    token = settings.TROY_METRICS_TOKEN
    if token and not _token_matches(request, token):
        response = JsonResponse(
            {"code": ErrorCode.METRICS_TOKEN_INVALID, "detail": "Send Authorization: Bearer <TROY_METRICS_TOKEN>."},
            status=401,
        )
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    return HttpResponse(generate_latest(scrape_registry()), content_type=CONTENT_TYPE_LATEST)
