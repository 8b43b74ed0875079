"""``GET /builds/{id}/logs/?offset=N``: a build's log as plain text, from character ``offset``.

Scoped like the other build endpoints (``build_list_for``: the owner or staff; anyone else gets
404). The answer carries ``X-Troy-Log-Next-Offset`` (pass it back as ``offset`` for what follows)
and ``X-Troy-Log-Complete: true|false`` (``true``: nothing will follow once read to the next
offset). Only the database is read: the log is copied from CloudWatch by a worker. Errors are JSON
whatever the client accepts (``invalid_log_offset`` for an offset outside the log).
"""

from __future__ import annotations

import re
from typing import Any

from django.http import Http404, HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from pipelines import services
from pipelines.exceptions import InvalidLogOffset
from pipelines.selectors import build_list_for

NEXT_OFFSET_HEADER = "X-Troy-Log-Next-Offset"
COMPLETE_HEADER = "X-Troy-Log-Complete"
_OFFSET = re.compile(r"[0-9]{1,18}")


class PlainTextRenderer(BaseRenderer):
    """Lets a client ask for ``text/plain``; the log itself is answered as an HttpResponse."""

    media_type = "text/plain"
    format = "txt"
    charset = "utf-8"

    def render(self, data: Any, accepted_media_type: str | None = None, renderer_context: Any = None) -> bytes:
        return str(data).encode(self.charset)


class BuildLogView(APIView):
    renderer_classes = [JSONRenderer, PlainTextRenderer]

    @extend_schema(
        summary="A build's log (plain text), from `offset`",
        parameters=[
            OpenApiParameter(
                "offset",
                OpenApiTypes.INT,
                description="Where to start, in characters (default 0): the previous answer's "
                f"`{NEXT_OFFSET_HEADER}`. Below 0 or past the log's size is refused.",
            ),
            OpenApiParameter(
                NEXT_OFFSET_HEADER,
                OpenApiTypes.INT,
                location=OpenApiParameter.HEADER,
                response=[200],
                description="The offset to ask for next.",
            ),
            OpenApiParameter(
                COMPLETE_HEADER,
                OpenApiTypes.STR,
                enum=["true", "false"],
                location=OpenApiParameter.HEADER,
                response=[200],
                description="`true` once the log is complete and this answer reaches its end; "
                "`false` while the build may still write (poll again from the next offset).",
            ),
        ],
        responses={
            (200, "text/plain"): OpenApiResponse(OpenApiTypes.STR, description="The log's text from `offset`."),
            400: OpenApiResponse(
                description="`{code: invalid_log_offset, detail, size}`: not a whole number from 0 to the log's size."
            ),
            404: OpenApiResponse(description="No such build (or not yours): `{code: not_found}`."),
        },
    )
    def get(self, request: Request, pk: str) -> HttpResponse:
        build = build_list_for(request.user).filter(pk=pk).only("id").first()
        if build is None:
            raise Http404
        raw = request.query_params.get("offset", "0")
        if not _OFFSET.fullmatch(raw):
            raise InvalidLogOffset("offset must be a whole number from 0 to the log's size.")
        text, next_offset, complete = services.build_log_read(build_id=build.pk, offset=int(raw))
        response = HttpResponse(text, content_type="text/plain; charset=utf-8")
        response[NEXT_OFFSET_HEADER] = str(next_offset)
        response[COMPLETE_HEADER] = "true" if complete else "false"
        response["Cache-Control"] = "no-store"
        response["X-Content-Type-Options"] = "nosniff"
        return response

    def finalize_response(self, request: Request, response: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(response, Response):  # an error: JSON, as every other error answer
            request.accepted_renderer = JSONRenderer()
            request.accepted_media_type = JSONRenderer.media_type
        return super().finalize_response(request, response, *args, **kwargs)
