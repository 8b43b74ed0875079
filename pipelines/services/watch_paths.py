"""Monorepo watch paths: does a push whose changed files are known touch the pipeline at all?

Pattern syntax (docs/github.md), matched against repository-relative paths with ``/``:

- ``*`` any characters within one path segment, ``?`` one character, ``[abc]`` / ``[!abc]`` a
  character class (fnmatch), ``**`` any number of whole segments (``apps/**/package.json``);
- a pattern names a file or a directory: ``apps/web`` (or ``apps/web/``) matches every file under
  it, and so does ``apps/*`` for every directory of ``apps``;
- patterns are anchored at the repository root (``src/*.js`` is not ``lib/src/a.js``; write
  ``**/src/*.js``);
- ``!pattern`` excludes: a file counts when it matches a plain pattern (or there is none) and no
  ``!`` pattern. ``["!docs/**"]`` builds on anything outside docs.

No pattern: every push builds. Changed files unknown (``None``): build (never skip blindly).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
import functools
import re
import uuid

from django.db import transaction

from pipelines.services.transitions import lock_pipeline, note_record

PUSH_SKIPPED = "push_skipped"  # the event's transition (the status does not change)
MAX_PATTERNS = 50
MAX_PATTERN_LENGTH = 255
# How many matching/considered paths a skip reason may name.
_REASON_FILES = 3


@dataclass(frozen=True)
class WatchDecision:
    build: bool
    reason: str


def _segment_regex(segment: str) -> str:
    out = []
    i = 0
    while i < len(segment):
        char = segment[i]
        if char == "*":
            while i < len(segment) and segment[i] == "*":
                i += 1
            out.append("[^/]*")
            continue
        if char == "?":
            out.append("[^/]")
        elif char == "[":
            end = segment.find("]", i + 2 if segment[i + 1 : i + 2] in ("!", "]") else i + 1)
            if end == -1:
                out.append(re.escape(char))
            else:
                body = segment[i + 1 : end]
                if body.startswith("!"):
                    body = "^" + body[1:]
                out.append("[" + body.replace("\\", "\\\\") + "]")
                i = end
        else:
            out.append(re.escape(char))
        i += 1
    return "".join(out)


@functools.lru_cache(maxsize=512)
def _compile(pattern: str) -> re.Pattern[str]:
    """A pattern (without ``!``) as a regex matching a path it names or any path under one."""
    segments = [s for s in pattern.strip("/").split("/") if s]
    parts: list[str] = []
    for segment in segments:
        if segment == "**":
            parts.append("(?:[^/]+/)*")
        else:
            parts.append(_segment_regex(segment) + "/")
    # Every segment ends with "/" above; the path matches when the pattern covers it whole, or a
    # directory above it.
    body = "".join(parts)
    return re.compile(f"(?:{body[:-1] if body.endswith('/') else body + '[^/]+'})(?:/.*)?")


def watch_pattern_check(pattern: object) -> str:
    """The pattern if valid, else ValueError with a message a user can act on."""
    if not isinstance(pattern, str) or not pattern.strip():
        raise ValueError("A watch path must be a non-empty string.")
    if len(pattern) > MAX_PATTERN_LENGTH:
        raise ValueError(f"A watch path is at most {MAX_PATTERN_LENGTH} characters.")
    if pattern != pattern.strip():
        raise ValueError(f"Watch path {pattern!r} has leading or trailing spaces.")
    body = pattern[1:] if pattern.startswith("!") else pattern
    if not body or body.startswith("/"):
        raise ValueError(f"Watch path {pattern!r} must be relative to the repository root (no leading '/').")
    if any(segment in (".", "..") for segment in body.split("/")):
        raise ValueError(f"Watch path {pattern!r} may not contain '.' or '..' segments.")
    if "\\" in body or "\x00" in body:
        raise ValueError(f"Watch path {pattern!r} may not contain backslashes or NUL.")
    try:
        _compile(body)
    except re.error as exc:
        raise ValueError(f"Watch path {pattern!r} is not a valid pattern: {exc}.") from exc
    return pattern


def watch_paths_check(patterns: object) -> list[str]:
    if not isinstance(patterns, list):
        raise ValueError("watch_paths must be a list of patterns.")
    if len(patterns) > MAX_PATTERNS:
        raise ValueError(f"At most {MAX_PATTERNS} watch paths.")
    return [watch_pattern_check(p) for p in patterns]


def path_watched(path: str, patterns: Iterable[str]) -> bool:
    include = [p for p in patterns if not p.startswith("!")]
    exclude = [p[1:] for p in patterns if p.startswith("!")]
    path = path.lstrip("/")
    if include and not any(_compile(p).fullmatch(path) for p in include):
        return False
    return not any(_compile(p).fullmatch(path) for p in exclude)


def _names(paths: list[str]) -> str:
    shown = ", ".join(paths[:_REASON_FILES])
    more = len(paths) - _REASON_FILES
    return f"{shown} and {more} more" if more > 0 else shown


def watch_paths_decide(patterns: list[str], changed_files: list[str] | None) -> WatchDecision:
    """Build or not, with the reason (for the event log)."""
    if not patterns:
        return WatchDecision(True, "No watch paths: every push builds.")
    if changed_files is None:
        return WatchDecision(True, "The changed files are unknown, so the push builds.")
    matched = [path for path in changed_files if path_watched(path, patterns)]
    if matched:
        return WatchDecision(True, f"Changed files match the watch paths: {_names(matched)}.")
    if not changed_files:
        return WatchDecision(False, f"The push changed no files; watch paths: {', '.join(patterns)}.")
    return WatchDecision(
        False,
        f"None of the {len(changed_files)} changed files ({_names(changed_files)}) match the watch paths "
        f"{', '.join(patterns)}.",
    )


def push_skipped_record(
    *, pipeline_id: uuid.UUID | str, commit_sha: str, reason: str, actor: str, where: str = ""
) -> None:
    """A push that changed none of the pipeline's watch paths: an event in its log (status
    unchanged, transition ``push_skipped``, the commit and the reason), no build. Locks the row.
    ``where``: what was pushed to (default: the pipeline's branch; a preview branch, a pull request)."""
    with transaction.atomic():
        pipeline = lock_pipeline(pipeline_id)
        note_record(
            pipeline,
            transition=PUSH_SKIPPED,
            actor=actor,
            message=f"Push of {commit_sha[:12]} to {where or pipeline.branch} built nothing: {reason}",
        )
