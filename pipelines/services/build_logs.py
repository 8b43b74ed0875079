"""Build logs: append-only text per build, redacted before it is stored.

Writers: the CodeBuild log copy (``pipelines.flows.build_logs``, from CloudWatch Logs) and the
local builder call :func:`build_log_append` with whole lines and :func:`build_log_finish` once
nothing more will come. Readers: the API (:func:`build_log_read`, by offset), the admin and a
failed build's error (:func:`build_log_tail`).

Storage: one ``BuildLog`` per build (its size in characters, whether it is complete, the
CloudWatch cursor) and ``BuildLogChunk`` rows, each starting at ``offset`` characters into the
whole log. Offsets count characters of the stored (redacted) text: a client passes back the
``next_offset`` it was given. Past ``MAX_LOG_CHARS`` the rest of a log is dropped with one note.

Redaction: every secret value of the pipeline (``build_redactor``) is replaced by ``***`` in each
appended text as a whole, so a value split across two appends is not recognised: writers append
whole lines (CloudWatch events are lines). Reads redact again with the secrets as they are then,
so a value made a secret after it was logged does not show either (the stored text keeps it).

Locking: a write locks the log row; one that also changes the build (the failed build's error)
locks the pipeline, then the build (``build_lock``), then the log: always in that order.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
import logging
import uuid

from django.db import transaction
from django.utils import timezone

from pipelines.choices import BuildKind, BuildStatus
from pipelines.exceptions import BuildNotFound, InvalidLogOffset
from pipelines.models import Build, BuildLog, BuildLogChunk
from pipelines.services.builds import build_lock
from pipelines.services.environment import build_redactor

logger = logging.getLogger(__name__)

CHUNK_CHARS = 64 * 1024  # one row holds at most this much; a longer append is split
MAX_LOG_CHARS = 10 * 1024 * 1024  # per build; the rest is dropped (a runaway build must not fill the database)
READ_MAX_CHARS = 1024 * 1024  # one read answers at most this much; the next offset says where to go on
TRUNCATED_NOTE = f"\n[troy: the log passed {MAX_LOG_CHARS} characters; the rest was not kept]\n"
# A build that ended but whose log was never finished (its last copy failed for good) counts as
# complete this long after it ended, so that `troy logs --follow` does not wait forever.
UNFINISHED_GRACE = timedelta(minutes=5)
# What a failed build's error ends with: its log's last lines, each cut, so the error stays short.
ERROR_TAIL_LINES = 20
ERROR_TAIL_LINE_CHARS = 200
ERROR_TAIL_HEADER = "Last lines of the log:"
_UNFINISHED = (BuildStatus.QUEUED, BuildStatus.RUNNING)


@dataclass(frozen=True)
class LogSource:
    """Where a CodeBuild build's log is copied from, and how far it got."""

    group: str
    stream: str
    token: str  # GetLogEvents' nextForwardToken after the last copied page; "" before the first
    complete: bool = False  # the log is complete: nothing more is copied


def _build(build_id: uuid.UUID | str) -> Build:
    try:
        build = Build.objects.only("id", "pipeline_id").filter(pk=build_id).first()
    except (ValueError, TypeError):  # not a UUID
        build = None
    if build is None:
        raise BuildNotFound(f"Build {build_id} does not exist.")
    return build


def _log_locked(build_id: uuid.UUID | str) -> BuildLog:
    """The build's log row, created when missing, locked (inside a transaction). The build's row
    is locked first: inserting the log takes a key-share lock on the build, so a report holding
    the build (then wanting the log) and a copy creating the log would otherwise deadlock."""
    Build.objects.select_for_update().filter(pk=build_id).values_list("pk", flat=True).first()
    BuildLog.objects.get_or_create(build_id=build_id)
    return BuildLog.objects.select_for_update().get(build_id=build_id)


def _store(log: BuildLog, text: str) -> None:
    """Append ``text`` (already redacted) to the locked ``log`` in chunks, within the size limit."""
    if log.truncated or not text:
        return
    room = MAX_LOG_CHARS - log.size
    cut = len(text) > room
    if cut:
        text = text[:room] + TRUNCATED_NOTE
    rows = []
    for start in range(0, len(text), CHUNK_CHARS):
        piece = text[start : start + CHUNK_CHARS]
        rows.append(BuildLogChunk(log=log, offset=log.size, text=piece))
        log.size += len(piece)
    BuildLogChunk.objects.bulk_create(rows)
    log.truncated = cut
    log.save(update_fields=["size", "truncated", "updated_at"])


# --- writes -------------------------------------------------------------------------------------


def build_log_append(*, build_id: uuid.UUID | str, text: str) -> int:
    """Append ``text`` (whole lines) to the build's log, secrets redacted. Returns the log's new
    size. A complete log takes nothing more (the text is dropped and logged)."""
    build = _build(build_id)
    redacted = build_redactor(build)(text) if text else ""
    with transaction.atomic():
        log = _log_locked(build.id)
        if log.complete:
            if redacted:
                logger.info("log of build %s is complete: %d characters not appended", build.id, len(redacted))
            return log.size
        _store(log, redacted)
        return log.size


def build_log_finish(*, build_id: uuid.UUID | str) -> None:
    """Mark the build's log complete (nothing more will be appended). A build that already failed
    building gets the log's last lines at the end of its error (once)."""
    with transaction.atomic():
        _pipeline, build = build_lock(build_id)
        log = _log_locked(build.id)
        if not log.complete:
            log.complete = True
            log.save(update_fields=["complete", "updated_at"])
        _error_add_tail(build, log)


def build_log_error_add_tail(*, build_id: uuid.UUID | str) -> None:
    """Called when a build fails: its error ends with the log's last lines if the log is already
    complete (the local builder finishes its log before it reports); otherwise
    :func:`build_log_finish` adds them when the last copy is in. Once either way."""
    with transaction.atomic():
        _pipeline, build = build_lock(build_id)
        log = BuildLog.objects.select_for_update().filter(build_id=build.id).first()
        if log is not None and log.complete:
            _error_add_tail(build, log)


def build_log_source_record(*, build_id: uuid.UUID | str, group: str, stream: str) -> None:
    """Keep where the build's CloudWatch Logs stream is (CodeBuild's reports say so; the copy
    falls back to CodeBuild's default). Once copying has begun the recorded stream stays: the
    cursor belongs to it, and starting another stream over would repeat text."""
    if not group or not stream:
        return
    with transaction.atomic():
        log = _log_locked(build_id)
        if (log.source_group, log.source_stream) == (group, stream) or log.source_token or log.size:
            return
        log.source_group, log.source_stream = group, stream
        log.save(update_fields=["source_group", "source_stream", "updated_at"])


def build_log_source(*, build_id: uuid.UUID | str) -> LogSource | None:
    """The recorded CloudWatch source of the build's log and its cursor (None when none is known)."""
    row = (
        BuildLog.objects.filter(build_id=build_id)
        .values("source_group", "source_stream", "source_token", "complete")
        .first()
    )
    if not row or not row["source_group"] or not row["source_stream"]:
        return None
    return LogSource(
        group=row["source_group"], stream=row["source_stream"], token=row["source_token"], complete=row["complete"]
    )


def build_log_copy_record(*, build_id: uuid.UUID | str, source: LogSource, token: str, text: str, finish: bool) -> bool:
    """Store one copy from CloudWatch: ``text`` (read from ``source.token`` on) is appended and the
    cursor moves to ``token``, only if the cursor is still where the copy started (a concurrent
    copy that got there first wins; this one's text would be a duplicate). With ``finish`` the log
    is then complete. Returns whether the text was stored."""
    build = _build(build_id)
    redacted = build_redactor(build)(text) if text else ""
    with transaction.atomic():
        log = _log_locked(build.id)
        current = (log.source_group, log.source_stream, log.source_token)
        if log.complete or current != (source.group, source.stream, source.token):
            logger.info("log copy of build %s is stale (cursor moved or log complete): dropped", build.id)
            return False
        _store(log, redacted)
        log.source_group, log.source_stream, log.source_token = source.group, source.stream, token
        log.save(update_fields=["source_group", "source_stream", "source_token", "updated_at"])
    if finish:
        build_log_finish(build_id=build.id)
    return True


# --- reads --------------------------------------------------------------------------------------


def _complete(build: Build, log: BuildLog | None) -> bool:
    if log is not None and log.complete:
        return True
    if build.status in _UNFINISHED:
        return False
    if log is None and not build.codebuild_build_id:
        return True  # it ended without building anything: no log is coming
    return build.finished_at is not None and timezone.now() - build.finished_at > UNFINISHED_GRACE


def build_log_read(*, build_id: uuid.UUID | str, offset: int) -> tuple[str, int, bool]:
    """The log's text from ``offset`` (at most ``READ_MAX_CHARS``), the offset to read from next,
    and whether the log is complete (nothing will follow the text once it is read to its end).
    An offset below 0 or past the log's size is refused (``invalid_log_offset``)."""
    try:
        build = Build.objects.get(pk=build_id)
    except (Build.DoesNotExist, ValueError) as exc:
        raise BuildNotFound(f"Build {build_id} does not exist.") from exc
    log = BuildLog.objects.filter(build_id=build.id).first()
    size = log.size if log else 0
    if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0 or offset > size:
        raise InvalidLogOffset(
            f"offset must be a whole number from 0 to {size} (the log's size).", extra={"size": size}
        )
    complete = _complete(build, log)
    if log is None or offset == size:
        return "", offset, complete
    first = log.chunks.filter(offset__lte=offset).order_by("-offset").first()
    pieces: list[str] = []
    taken = 0
    if first is not None:
        pieces.append(first.text[offset - first.offset : offset - first.offset + READ_MAX_CHARS])
        taken = len(pieces[0])
    if taken < READ_MAX_CHARS:
        for chunk in log.chunks.filter(offset__gt=offset).order_by("offset").iterator():
            piece = chunk.text[: READ_MAX_CHARS - taken]
            pieces.append(piece)
            taken += len(piece)
            if taken >= READ_MAX_CHARS:
                break
    next_offset = offset + taken
    # Redacted again as it is read: a value made a secret after it was logged is hidden too.
    return build_redactor(build)("".join(pieces)), next_offset, complete and next_offset >= size


def build_log_tail(*, build_id: uuid.UUID | str, lines: int = 200) -> str:
    """The log's last ``lines`` lines ("" without a log)."""
    try:
        key = build_id if isinstance(build_id, uuid.UUID) else uuid.UUID(str(build_id))
    except ValueError:
        return ""
    if lines < 1:
        return ""
    text = ""
    for chunk in BuildLogChunk.objects.filter(log_id=key).order_by("-offset").iterator():
        text = chunk.text + text
        # One more line than asked: the first one may be cut.
        if text.count("\n") > lines:
            break
    if not text:
        return ""
    tail = "\n".join(text.rstrip("\n").split("\n")[-lines:])
    build = Build.objects.only("id", "pipeline_id").filter(pk=key).first()
    return build_redactor(build)(tail) if build is not None else tail  # again, as build_log_read


# --- a failed build's error ---------------------------------------------------------------------


def _failed_building(build: Build) -> bool:
    """Whether the build failed while building (the outcome CodeBuild, or the local builder
    through the same report, recorded on its phases; or no outcome yet): not in the deploy step,
    which runs only after a SUCCEEDED outcome and whose error the log would not explain."""
    outcome = next((p.get("build_status") for p in build.phases or [] if p.get("phase") == "COMPLETED"), "")
    return build.status == BuildStatus.FAILED and build.kind == BuildKind.AUTOMATED and outcome != "SUCCEEDED"


def _error_add_tail(build: Build, log: BuildLog) -> None:
    """With the build and its complete log locked: the error gains the log's last lines, once."""
    if log.tail_in_error or not log.complete or not _failed_building(build):
        return
    log.tail_in_error = True
    log.save(update_fields=["tail_in_error", "updated_at"])
    tail = build_log_tail(build_id=log.build_id, lines=ERROR_TAIL_LINES)
    if not tail.strip():
        return
    lines = [
        line if len(line) <= ERROR_TAIL_LINE_CHARS else line[: ERROR_TAIL_LINE_CHARS - 1] + "…"
        for line in tail.split("\n")
    ]
    build.error = f"{build.error.rstrip()}\n{ERROR_TAIL_HEADER}\n" + "\n".join(lines)
    build.save(update_fields=["error", "updated_at"])
