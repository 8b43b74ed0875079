"""CloudWatch Logs: read a log stream forward from a cursor (GetLogEvents), as plain data.

CodeBuild writes each build's output to a stream (by default ``/aws/codebuild/{project}``, stream
= the build's uuid). :func:`log_events_read` pages with ``nextForwardToken`` from the head (or
from the token a previous read ended on) and stops when the token comes back unchanged, which is
how GetLogEvents says "nothing more for now". The token it answers is the cursor to resume from:
events already read are never read again.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from deployment_service import aws

MAX_PAGES = 50  # per read; GetLogEvents answers up to 1 MB or 10,000 events a page


def codebuild_default_stream(codebuild_build_id: str) -> tuple[str, str]:
    """The group and stream CodeBuild writes a build of the shared project to when the project
    sets no other (bootstrap_aws sets none): ``/aws/codebuild/{project}`` and the build's uuid."""
    project, _, run = codebuild_build_id.partition(":")
    return f"/aws/codebuild/{project}", run


def codebuild_stream_of(codebuild_build_id: str, *, group: str, stream: str) -> tuple[str, str] | None:
    """``(group, stream)`` as a CodeBuild report names them, if the stream is the build's own (its
    name is the build's uuid, maybe after a prefix); None otherwise."""
    run = codebuild_build_id.partition(":")[2]
    if not group or not run or not (stream == run or stream.endswith(f"/{run}")):
        return None
    return group, stream


@dataclass(frozen=True)
class LogRead:
    text: str  # the events' messages, one line each, in order
    events: int
    token: str  # the nextForwardToken to resume from
    more: bool  # the page limit was reached before the token repeated: read again soon


def log_events_read(*, group: str, stream: str, token: str = "", max_pages: int = MAX_PAGES) -> LogRead | None:
    """The stream's events after ``token`` (from its head without one). None when the group or
    the stream does not exist (yet: CodeBuild creates the stream when the build starts)."""
    client = aws.client("logs")
    request: dict[str, Any] = {"logGroupName": group, "logStreamName": stream, "startFromHead": True}
    lines: list[str] = []
    current = token
    for _page in range(max_pages):
        if current:
            request["nextToken"] = current
        try:
            answer = client.get_log_events(**request)
        except ClientError as exc:
            if aws.error_code(exc) == "ResourceNotFoundException":
                return None
            raise
        for event in answer.get("events") or []:
            message = str(event.get("message") or "")
            lines.append(message if message.endswith("\n") else message + "\n")
        following = answer.get("nextForwardToken") or current
        if following == current:
            return LogRead(text="".join(lines), events=len(lines), token=current, more=False)
        current = following
    return LogRead(text="".join(lines), events=len(lines), token=current, more=True)
