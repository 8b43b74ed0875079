"""The build page's log: the last lines of the stored (already redacted) log, escaped, in a
monospaced box, with how much there is and whether the build is still writing. The whole log is
``GET /api/v1/builds/{id}/logs/`` (or ``troy logs``)."""

from __future__ import annotations

from django.contrib import admin
from django.utils.html import format_html

from pipelines import services
from pipelines.models import Build, BuildLog

ADMIN_TAIL_LINES = 200
_BOX = (
    "max-height:40em;overflow:auto;white-space:pre-wrap;word-break:break-all;margin:0;padding:.5em;"
    "font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:12px;"
    "background:var(--darkened-bg,#f8f8f8);border:1px solid var(--hairline-color,#ddd)"
)


class BuildLogAdminMixin:
    """For BuildAdmin: add ``log_tail`` to its readonly fields."""

    @admin.display(description="Log (last lines)")
    def log_tail(self, build: Build) -> str:
        log = BuildLog.objects.filter(build_id=build.pk).first()
        if log is None or not log.size:
            return "No log stored."
        tail = services.build_log_tail(build_id=build.pk, lines=ADMIN_TAIL_LINES)
        state = "complete" if log.complete else "still being written"
        truncated = "; the rest past the size limit was dropped" if log.truncated else ""
        return format_html(
            '<p>{} characters, {}{}. The last {} lines:</p><pre class="troy-build-log" style="{}">{}</pre>',
            log.size,
            state,
            truncated,
            ADMIN_TAIL_LINES,
            _BOX,
            tail,
        )
