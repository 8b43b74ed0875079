"""Read-only admin for inbound deliveries: operators look at what arrived and what handling did;
nothing here changes a delivery (they are the record of what SNS and GitHub sent)."""

from __future__ import annotations

import json

from django.contrib import admin
from django.utils.html import format_html

from deployment_service.admin import ReadOnlyAdminMixin
from hooks.models import GithubDelivery, SnsDelivery


def _pretty(value) -> str:
    return format_html("<pre style='white-space: pre-wrap'>{}</pre>", json.dumps(value, indent=2, sort_keys=True))


@admin.register(SnsDelivery)
class SnsDeliveryAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("message_id", "message_type", "topic_arn", "received_at", "processed_at", "result")
    list_filter = ("message_type", "topic_arn", ("processed_at", admin.EmptyFieldListFilter))
    search_fields = ("message_id", "result", "subject")
    date_hierarchy = "received_at"
    fields = (
        "message_id",
        "message_type",
        "topic_arn",
        "subject",
        "received_at",
        "processed_at",
        "result",
        "pretty_body",
        "pretty_message",
    )
    readonly_fields = fields

    def get_queryset(self, request):
        # The delivery as received is shown on its own page only (one more query there); the
        # changelist does not load a hundred of them.
        return super().get_queryset(request).defer("body")

    @admin.display(description="body")
    def pretty_body(self, obj: SnsDelivery) -> str:
        return _pretty({k: v for k, v in (obj.body or {}).items() if k != "Message"})

    @admin.display(description="message")
    def pretty_message(self, obj: SnsDelivery) -> str:
        raw = (obj.body or {}).get("Message", "")
        try:
            return _pretty(json.loads(raw))
        except (TypeError, ValueError):
            return format_html("<pre>{}</pre>", raw)


@admin.register(GithubDelivery)
class GithubDeliveryAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("delivery_id", "event", "received_at", "processed_at", "result")
    list_filter = ("event", ("processed_at", admin.EmptyFieldListFilter))
    search_fields = ("delivery_id", "result")
    date_hierarchy = "received_at"
    fields = ("delivery_id", "event", "received_at", "processed_at", "result", "pretty_payload")
    readonly_fields = fields

    def get_queryset(self, request):
        # A push payload can be megabytes: shown on the delivery's own page, never loaded by the list.
        return super().get_queryset(request).defer("payload")

    @admin.display(description="payload")
    def pretty_payload(self, obj: GithubDelivery) -> str:
        return _pretty(obj.payload)
