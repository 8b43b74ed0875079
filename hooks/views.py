"""``POST /hooks/sns/``: SNS's HTTPS deliveries. No session or token auth (SNS signs instead), no
CSRF (nothing here reads a cookie). The checks and the list of answers are in ``hooks.sns``."""

from __future__ import annotations

from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from deployment_service.error_codes import ErrorCode
from deployment_service.exceptions import ApplicationError
from hooks.sns import MAX_BODY_BYTES, sns_delivery_receive


@csrf_exempt
@require_POST
def sns_webhook(request: HttpRequest) -> JsonResponse:
    too_large = JsonResponse(
        {"code": ErrorCode.TOO_LARGE, "detail": "The delivery is larger than an SNS message."}, status=413
    )
    try:
        if int(request.headers.get("Content-Length") or 0) > MAX_BODY_BYTES:
            return too_large
        body = request.body  # SNS sends JSON as text/plain: read the raw bytes, not request.POST
    except (RequestDataTooBig, ValueError):
        return too_large
    try:
        receipt = sns_delivery_receive(body=body, headers=dict(request.headers))
    except ApplicationError as exc:
        return JsonResponse(exc.as_dict(), status=exc.http_status)
    return JsonResponse({"status": receipt.status, "message_id": receipt.message_id}, status=receipt.http_status)
