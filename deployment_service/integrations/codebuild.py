"""CodeBuild for automated builds: the buildspec, StartBuild with overrides, StopBuild,
BatchGetBuilds, and the conversion of a BatchGetBuilds answer into the EventBridge event shape.

Small functions over ``aws.client("codebuild")`` that take and return plain data. The project is
shared by every pipeline (``TROY_CODEBUILD_PROJECT``); everything that differs per build travels
in StartBuild's overrides.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
import json
import logging
import re
from typing import Any
from urllib.parse import quote

from botocore.exceptions import ClientError
from django.conf import settings
import yaml

from deployment_service import aws

logger = logging.getLogger(__name__)

BATCH_GET_LIMIT = 100  # BatchGetBuilds takes at most 100 ids


# --- the buildspec ------------------------------------------------------------------------------


def _commands(text: str) -> list[str]:
    """One command per non-empty line of a pipeline's command text."""
    return [line.strip() for line in (text or "").splitlines() if line.strip()]


def buildspec_for(*, install: str, build: str, test: str, output_dir: str) -> str:
    """A buildspec (version 0.2) for a pipeline's commands.

    Phases: ``install`` and ``build`` run the pipeline's commands and abort the build on failure
    (``on-failure: ABORT``), so nothing after a failed phase runs. The test command runs in
    ``post_build``: after the build (so tests may check the built site), only when the build
    succeeded (because of ABORT), and a failing test fails the build before UPLOAD_ARTIFACTS, so
    a red test never deploys. It gets its own phase events, shown as "Test". Phases with no
    command are left out. The artifacts are everything under the output directory, zipped
    without that directory as a prefix.
    """
    phases: dict[str, Any] = {}
    if _commands(install):
        phases["install"] = {"on-failure": "ABORT", "commands": _commands(install)}
    if _commands(build):
        phases["build"] = {"on-failure": "ABORT", "commands": _commands(build)}
    if _commands(test):
        phases["post_build"] = {"commands": _commands(test)}
    spec: dict[str, Any] = {"version": 0.2}
    if phases:
        spec["phases"] = phases
    spec["artifacts"] = {
        "base-directory": (output_dir or ".").strip("/") or ".",
        "files": ["**/*"],
        "discard-paths": "no",
    }
    return yaml.safe_dump(spec, sort_keys=False, default_flow_style=False)


# --- StartBuild / StopBuild ---------------------------------------------------------------------


@dataclass(frozen=True)
class StartedBuild:
    id: str  # "project:uuid", what BatchGetBuilds and StopBuild take
    arn: str
    logs_url: str
    artifact_key: str


def codebuild_id_from_arn(value: str) -> str:
    """``arn:aws:codebuild:region:account:build/project:uuid`` → ``project:uuid`` (ids pass through)."""
    if value.startswith("arn:") and ":build/" in value:
        return value.split(":build/", 1)[1]
    return value


def console_logs_url(codebuild_build_id: str) -> str:
    """The build's log page in the CodeBuild console (it exists from the moment the build starts)."""
    project = codebuild_build_id.split(":", 1)[0]
    region = settings.AWS_REGION
    return (
        f"https://{region}.console.aws.amazon.com/codesuite/codebuild/projects/{quote(project, safe='')}"
        f"/build/{quote(codebuild_build_id, safe='')}/log?region={region}"
    )


def usable_logs_url(url: str | None) -> str:
    """A logs link worth keeping (emulators answer placeholders like ``group=null``)."""
    if not url or not url.startswith("https://") or "=null" in url:
        return ""
    return url


def artifact_key_for(build_id: object) -> str:
    return f"artifacts/{build_id}.zip"


def source_key_for(build_id: object) -> str:
    return f"sources/{build_id}.zip"


def start_build(*, build_id: object, buildspec: str) -> StartedBuild:
    """StartBuild on the shared project for Troy build ``build_id``, whose source zip is already at
    ``sources/{build_id}.zip`` in the artifact bucket. The artifact lands at exactly
    ``artifacts/{build_id}.zip``.

    The idempotency token is the build id, so a worker retrying after a lost answer gets the same
    CodeBuild build back instead of a second one. The only environment variable is the build id:
    CodeBuild shows plaintext variables in its console and events, so no secret goes there.
    """
    bucket = settings.TROY_ARTIFACT_BUCKET
    answer = aws.client("codebuild").start_build(
        projectName=settings.TROY_CODEBUILD_PROJECT,
        sourceTypeOverride="S3",
        sourceLocationOverride=f"{bucket}/{source_key_for(build_id)}",
        buildspecOverride=buildspec,
        artifactsOverride={
            "type": "S3",
            "location": bucket,
            "path": "artifacts",
            "name": f"{build_id}.zip",
            "namespaceType": "NONE",
            "packaging": "ZIP",
            "overrideArtifactName": False,
            "encryptionDisabled": False,
        },
        idempotencyToken=str(build_id),
        timeoutInMinutesOverride=settings.TROY_CODEBUILD_TIMEOUT_MINUTES,
        environmentVariablesOverride=[{"name": "TROY_BUILD_ID", "value": str(build_id), "type": "PLAINTEXT"}],
    )["build"]
    codebuild_build_id = answer["id"]
    return StartedBuild(
        id=codebuild_build_id,
        arn=answer.get("arn", ""),
        logs_url=usable_logs_url(answer.get("logs", {}).get("deepLink")) or console_logs_url(codebuild_build_id),
        artifact_key=artifact_key_for(build_id),
    )


def stop_build(codebuild_build_id: str) -> dict[str, Any] | None:
    """StopBuild. Returns the build as CodeBuild then describes it (for a build that had already
    finished, its final status), or None when CodeBuild does not know the id."""
    try:
        answer = aws.client("codebuild").stop_build(id=codebuild_build_id)
    except ClientError as exc:
        code = aws.error_code(exc)
        if code == "ResourceNotFoundException":
            return None
        if code != "InvalidInputException":
            raise
        # Refused, e.g. because the build is already over: describe it instead.
        logger.info("StopBuild %s refused (%s); describing the build", codebuild_build_id, aws.error_message(exc))
        found, _missing = batch_get_builds([codebuild_build_id])
        return found[0] if found else None
    return answer.get("build") or None


def _chunks(items: list[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def batch_get_builds(codebuild_build_ids: Iterable[str]) -> tuple[list[dict[str, Any]], list[str]]:
    """BatchGetBuilds in chunks of 100. Returns (builds as CodeBuild answers them, ids not found)."""
    ids = list(dict.fromkeys(codebuild_build_ids))
    found: list[dict[str, Any]] = []
    missing: list[str] = []
    client = aws.client("codebuild")
    for chunk in _chunks(ids, BATCH_GET_LIMIT):
        answer = client.batch_get_builds(ids=chunk)
        found.extend(answer.get("builds", []))
        missing.extend(answer.get("buildsNotFound", []))
    return found, missing


# --- times and the event shape ------------------------------------------------------------------

_MONTHS = {
    name: number
    for number, name in enumerate(
        ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"], start=1
    )
}
_EVENT_TIME = re.compile(
    r"^(?P<mon>[A-Z][a-z]{2}) (?P<day>\d{1,2}), (?P<year>\d{4}) "
    r"(?P<hour>\d{1,2}):(?P<minute>\d{2}):(?P<second>\d{2}) (?P<ampm>AM|PM)$"
)


def parse_codebuild_time(value: Any) -> datetime | None:
    """CodeBuild's event times ("Nov 1, 2026 4:12:29 PM", UTC), ISO strings or datetimes → an aware
    datetime; None for anything else. Parsed by hand: ``strptime``'s %b and %p follow the locale."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    text = str(value).strip()
    match = _EVENT_TIME.match(text)
    if match and match["mon"] in _MONTHS:
        hour = int(match["hour"]) % 12 + (12 if match["ampm"] == "PM" else 0)
        try:
            return datetime(
                int(match["year"]),
                _MONTHS[match["mon"]],
                int(match["day"]),
                hour,
                int(match["minute"]),
                int(match["second"]),
                tzinfo=UTC,
            )
        except ValueError:
            return None
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _event_time(value: Any) -> str | None:
    """A datetime as CodeBuild's events write it."""
    when = parse_codebuild_time(value)
    if when is None:
        return None
    when = when.astimezone(UTC)
    return f"{when:%b} {when.day}, {when.year} {when.hour % 12 or 12}:{when:%M:%S} {'PM' if when.hour >= 12 else 'AM'}"


def _context_text(items: Any) -> list[str]:
    """BatchGetBuilds' phase contexts ``[{statusCode, message}]`` → the events' ``["CODE: message"]``."""
    out = []
    for item in items or []:
        if isinstance(item, dict):
            code, message = item.get("statusCode") or "", item.get("message") or ""
            text = f"{code}: {message}" if code and message else code or message
            if text:
                out.append(text)
        elif item:
            out.append(str(item))
    return out


def build_to_event(build: dict[str, Any]) -> dict[str, Any]:
    """A BatchGetBuilds build → a "CodeBuild Build State Change" event, so the reconciler's
    answers go through exactly the code path SNS deliveries take."""
    phases = []
    for phase in build.get("phases") or []:
        item: dict[str, Any] = {"phase-type": phase.get("phaseType")}
        if phase.get("phaseStatus"):
            item["phase-status"] = phase["phaseStatus"]
        if phase.get("startTime"):
            item["start-time"] = _event_time(phase["startTime"])
        if phase.get("endTime"):
            item["end-time"] = _event_time(phase["endTime"])
        if phase.get("durationInSeconds") is not None:
            item["duration-in-seconds"] = phase["durationInSeconds"]
        if phase.get("contexts"):
            item["phase-context"] = _context_text(phase["contexts"])
        phases.append(item)
    arn = build.get("arn") or ""
    current_context = next(
        (_context_text(p.get("contexts")) for p in reversed(build.get("phases") or []) if p.get("contexts")), []
    )
    return {
        "detail-type": "CodeBuild Build State Change",
        "source": "aws.codebuild",
        "resources": [arn] if arn else [],
        "detail": {
            "build-status": build.get("buildStatus", ""),
            "project-name": build.get("projectName") or build.get("id", "").split(":", 1)[0],
            "build-id": arn or build.get("id", ""),
            "current-phase": build.get("currentPhase", ""),
            "current-phase-context": json.dumps(current_context),
            "additional-information": {
                "build-complete": bool(build.get("buildComplete")),
                "build-start-time": _event_time(build.get("startTime")),
                "logs": {"deep-link": (build.get("logs") or {}).get("deepLink", "")},
                "phases": phases,
            },
        },
    }
