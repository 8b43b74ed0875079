"""Copying a CodeBuild build's log from CloudWatch Logs into Troy (called by
``pipelines.tasks.copy_build_logs``).

Each run reads the stream forward from the cursor the log keeps (GetLogEvents' nextForwardToken)
outside any transaction, then stores the text and the new cursor in one locked write that is
dropped if another run moved the cursor meanwhile: re-runs and duplicates never repeat text.

Runs are sent as CodeBuild's phases complete and, ``final``, once it reports the outcome.
CloudWatch may still be taking in the last lines then, so a final run finishes the log only on a
later attempt that finds nothing new (or after ``FINAL_ATTEMPTS``); until then it asks to run
again ``FINAL_SETTLE_SECONDS`` later. A stream that does not exist yet is "nothing new".
"""

from __future__ import annotations

from dataclasses import dataclass
import logging
import uuid

from deployment_service.integrations import cloudwatch_logs as cwl
from pipelines import services
from pipelines.models import Build

logger = logging.getLogger(__name__)

FINAL_SETTLE_SECONDS = 5.0
FINAL_ATTEMPTS = 4
GAVE_UP_NOTE = "\n[troy: the rest of this log could not be copied from CloudWatch Logs: {error}]\n"


@dataclass(frozen=True)
class LogCopy:
    """What one run did, and whether (and when, how) the copy must run again."""

    message: str
    again_in: float | None = None  # seconds; None: no further run needed
    final: bool = False
    attempt: int = 0


def build_log_copy_run(*, build_id: uuid.UUID | str, final: bool = False, attempt: int = 0) -> LogCopy:
    """Copy what is new in the build's CloudWatch stream; with ``final``, finish the log once the
    stream has settled. Idempotent."""
    build = Build.objects.filter(pk=build_id).only("id", "codebuild_build_id").first()
    if build is None or not build.codebuild_build_id:
        return LogCopy(f"nothing to copy: build {build_id} {'has no CodeBuild build' if build else 'is gone'}")
    source = services.build_log_source(build_id=build.id)
    if source is None:
        group, stream = cwl.codebuild_default_stream(build.codebuild_build_id)
        services.build_log_source_record(build_id=build.id, group=group, stream=stream)
        source = services.build_log_source(build_id=build.id)
        if source is None:  # something else wrote this log first: not CodeBuild's to copy
            return LogCopy(f"nothing to copy: build {build.id} has a log of another source")
    if source.complete:
        return LogCopy(f"log of build {build.id} is complete")

    read = cwl.log_events_read(group=source.group, stream=source.stream, token=source.token)
    events = read.events if read else 0
    more = bool(read and read.more)
    last_attempt = attempt + 1 >= FINAL_ATTEMPTS
    finish = final and not more and ((attempt > 0 and events == 0) or last_attempt)
    if read is None:
        if finish:
            services.build_log_finish(build_id=build.id)
            return LogCopy(f"finished: no stream {source.group} {source.stream}")
        return _again(f"no stream {source.group} {source.stream} yet", final=final, attempt=attempt)
    stored = services.build_log_copy_record(
        build_id=build.id, source=source, token=read.token, text=read.text, finish=finish
    )
    if not stored:
        return LogCopy("dropped: another copy moved the cursor first")
    message = f"copied {events} event(s)" + (", finished" if finish else "")
    if more:
        return LogCopy(message + ", more to read", again_in=0.0, final=final, attempt=attempt)
    if finish:
        return LogCopy(message)
    return _again(message, final=final, attempt=attempt)


def _again(message: str, *, final: bool, attempt: int) -> LogCopy:
    if not final:
        return LogCopy(message)
    return LogCopy(message, again_in=FINAL_SETTLE_SECONDS, final=True, attempt=attempt + 1)


def build_log_copy_give_up(*, build_id: uuid.UUID | str | None, final: bool, error: str) -> None:
    """The final copy's retries are used up: the log says so and is finished (a follower stops
    waiting). A copy sent as a phase completed gives up quietly: the final one comes later."""
    if not build_id or not final:
        return
    if not Build.objects.filter(pk=build_id).exists():
        return
    logger.warning("log of build %s could not be copied: %s", build_id, error)
    services.build_log_append(build_id=build_id, text=GAVE_UP_NOTE.format(error=error))
    services.build_log_finish(build_id=build_id)
