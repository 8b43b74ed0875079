"""``POST /hooks/github/``: GitHub's webhook. No session or token auth (GitHub signs instead), no
CSRF (nothing here reads a cookie). The logic and the list of answers are in ``hooks.github``."""

from __future__ import annotations

from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from deployment_service.error_codes import ErrorCode
from deployment_service.exceptions import ApplicationError
from hooks.github import github_delivery_receive


@csrf_exempt
@require_POST
def github_webhook(request: HttpRequest) -> JsonResponse:
    try:
        body = request.body  # the raw bytes: the signature is over exactly these
    except RequestDataTooBig:
        return JsonResponse(
            {"code": ErrorCode.TOO_LARGE, "detail": "The delivery is larger than this service accepts."}, status=413
        )
    try:
        receipt = github_delivery_receive(
            body=body,
            signature=request.headers.get("X-Hub-Signature-256"),
            event=request.headers.get("X-GitHub-Event"),
            delivery_id=request.headers.get("X-GitHub-Delivery"),
        )
    except ApplicationError as exc:
        return JsonResponse(exc.as_dict(), status=exc.http_status)
    return JsonResponse({"status": receipt.status, "delivery": receipt.delivery_id}, status=receipt.http_status)
