"""CodeBuild for automated builds: the buildspec, StartBuild with overrides, StopBuild,
BatchGetBuilds, and one report type that both CodeBuild's EventBridge events and BatchGetBuilds
answers are read into (:class:`CodebuildReport`).

Small functions over ``aws.client("codebuild")`` that take and return plain data. The project is
shared by every pipeline (``TROY_CODEBUILD_PROJECT``); everything that differs per build travels
in StartBuild's overrides.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
import json
import logging
import re
import shlex
from typing import Any
from urllib.parse import quote

from botocore.exceptions import ClientError
from django.conf import settings
import yaml

from deployment_service import artifact_keys, aws

logger = logging.getLogger(__name__)

BATCH_GET_LIMIT = 100  # BatchGetBuilds takes at most 100 ids


# --- the buildspec ------------------------------------------------------------------------------


def _commands(text: str) -> list[str]:
    """One command per non-empty line of a pipeline's command text."""
    return [line.strip() for line in (text or "").splitlines() if line.strip()]


def _cd_into(base_dir: str) -> str:
    """The command that enters ``base_dir``: from CodeBuild's source directory (the local builder
    sets ``CODEBUILD_SRC_DIR`` to its working copy and starts each phase there too)."""
    return f'cd "${{CODEBUILD_SRC_DIR:-.}}"/{shlex.quote(base_dir)}'


def buildspec_for(
    *,
    install: str,
    build: str,
    test: str,
    output_dir: str,
    base_dir: str = "",
    variables: Mapping[str, str] | None = None,
    parameters: Mapping[str, str] | None = None,
) -> str:
    """A buildspec (version 0.2) for a pipeline's commands.

    Phases: ``install`` and ``build`` run the pipeline's commands and abort the build on failure
    (``on-failure: ABORT``), so nothing after a failed phase runs. The test command runs in
    ``post_build``: after the build (so tests may check the built site), only when the build
    succeeded (because of ABORT), and a failing test fails the build before UPLOAD_ARTIFACTS, so
    a red test never deploys. It gets its own phase events, shown as "Test". Phases with no
    command are left out. The artifacts are everything under the output directory, zipped
    without that directory as a prefix.

    Monorepos: with ``base_dir`` every phase first enters it, and the output directory is
    relative to it. Environment: ``variables`` (plain values) go to ``env.variables``;
    ``parameters`` (NAME → SSM parameter name) to ``env.parameter-store``, which CodeBuild
    resolves inside the build, so a secret's value is never in the buildspec, StartBuild or the
    events CodeBuild sends.
    """
    base = (base_dir or "").strip("/")
    enter = [_cd_into(base)] if base else []
    phases: dict[str, Any] = {}
    if _commands(install):
        phases["install"] = {"on-failure": "ABORT", "commands": enter + _commands(install)}
    if _commands(build):
        phases["build"] = {"on-failure": "ABORT", "commands": enter + _commands(build)}
    if _commands(test):
        phases["post_build"] = {"commands": enter + _commands(test)}
    spec: dict[str, Any] = {"version": 0.2}
    env: dict[str, Any] = {}
    if variables:
        env["variables"] = {name: str(value) for name, value in sorted(variables.items())}
    if parameters:
        env["parameter-store"] = dict(sorted(parameters.items()))
    if env:
        spec["env"] = env
    if phases:
        spec["phases"] = phases
    output = (output_dir or ".").strip("/") or "."
    if base:
        output = base if output == "." else f"{base}/{output}"
    spec["artifacts"] = {
        "base-directory": output,
        "files": ["**/*"],
        "discard-paths": "no",
    }
    return yaml.safe_dump(spec, sort_keys=False, default_flow_style=False)


# --- StartBuild / StopBuild ---------------------------------------------------------------------


@dataclass(frozen=True)
class StartedBuild:
    id: str  # "project:uuid", what BatchGetBuilds and StopBuild take
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
        sourceLocationOverride=f"{bucket}/{artifact_keys.source_key(build_id)}",
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
        logs_url=usable_logs_url(answer.get("logs", {}).get("deepLink")) or console_logs_url(codebuild_build_id),
        artifact_key=artifact_keys.build_artifact_key(build_id),
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


STATE_CHANGE = "CodeBuild Build State Change"
PHASE_CHANGE = "CodeBuild Build Phase Change"


@dataclass(frozen=True)
class CodebuildReport:
    """What one CodeBuild event (or BatchGetBuilds answer) says about one build, normalized.

    ``phases`` entries: ``{"phase", "status", "start", "end", "duration", "context"}`` with ISO
    times. ``build_status`` is empty for phase-change events."""

    codebuild_build_id: str
    build_status: str = ""
    current_phase: str = ""
    current_context: list[str] = field(default_factory=list)
    phases: list[dict[str, Any]] = field(default_factory=list)
    logs_url: str = ""
    timeout_minutes: Any = None
    # Where CodeBuild writes the build's output in CloudWatch Logs ("" when the report does not say).
    log_group: str = ""
    log_stream: str = ""


# --- events and BatchGetBuilds answers → one report -------------------------------------------------------------------------------------


def _context(value: Any) -> list[str]:
    """Phase contexts come as lists of strings or as one string ("[]", "[: ]", "[CODE: message]")."""
    if isinstance(value, str):
        text = value.strip()
        try:
            value = json.loads(text)
        except ValueError:
            value = [text[1:-1] if text.startswith("[") and text.endswith("]") else text]
    if isinstance(value, dict):
        value = [value]
    if not isinstance(value, list):
        return []
    out = []
    for item in value:
        if isinstance(item, dict):
            item = ": ".join(str(v) for v in (item.get("statusCode"), item.get("message")) if v)
        text = str(item).strip()
        if text and text.strip(": ") and text not in out:
            out.append(text)
    return out


def _iso(value: Any) -> str | None:
    when = parse_codebuild_time(value)
    return when.isoformat() if when else None


def _number(value: Any) -> float | int | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return int(value) if float(value).is_integer() else value


def _phase(*, name: Any, status: Any, start: Any, end: Any, duration: Any, context: Any) -> dict[str, Any] | None:
    if not isinstance(name, str) or not name:
        return None
    return {
        "phase": name.upper(),
        "status": status.upper() if isinstance(status, str) and status else None,
        "start": _iso(start),
        "end": _iso(end),
        "duration": _number(duration),
        "context": _context(context),
    }


def codebuild_report_from_event(event: dict[str, Any]) -> CodebuildReport | str:
    """An EventBridge CodeBuild event → a report on one build of our project, or the reason it is
    not one (another project's build, another kind of event, a malformed one)."""
    if not isinstance(event, dict):
        return "ignored: not an event"
    detail_type = event.get("detail-type")
    detail = event.get("detail")
    if (
        event.get("source") != "aws.codebuild"
        or detail_type not in (STATE_CHANGE, PHASE_CHANGE)
        or not isinstance(detail, dict)
    ):
        return f"ignored: not a CodeBuild build event ({detail_type!r})"
    resources = event.get("resources") or [""]
    codebuild_build_id = codebuild_id_from_arn(str(detail.get("build-id") or resources[0] or ""))
    project = detail.get("project-name") or codebuild_build_id.split(":", 1)[0]
    if project != settings.TROY_CODEBUILD_PROJECT or codebuild_build_id.split(":", 1)[0] != project:
        return f"ignored: build {codebuild_build_id or '?'} of project {project!r}, not ours"
    info = detail.get("additional-information")
    info = info if isinstance(info, dict) else {}
    logs: dict[str, Any] = info["logs"] if isinstance(info.get("logs"), dict) else {}

    phases = [
        _phase(
            name=p.get("phase-type"),
            status=p.get("phase-status"),
            start=p.get("start-time"),
            end=p.get("end-time"),
            duration=p.get("duration-in-seconds"),
            context=p.get("phase-context"),
        )
        for p in (info.get("phases") or [])
        if isinstance(p, dict)
    ]
    build_status = ""
    current = ""
    current_context: list[str] = []
    if detail_type == PHASE_CHANGE:
        phases.append(
            _phase(
                name=detail.get("completed-phase"),
                status=detail.get("completed-phase-status"),
                start=detail.get("completed-phase-start"),
                end=detail.get("completed-phase-end"),
                duration=detail.get("completed-phase-duration-seconds"),
                context=detail.get("completed-phase-context"),
            )
        )
    else:
        build_status = str(detail.get("build-status") or "").upper()
        if not build_status:
            return f"ignored: state change of {codebuild_build_id} without a build status"
        current = str(detail.get("current-phase") or "").upper()
        current_context = _context(detail.get("current-phase-context"))
    return CodebuildReport(
        codebuild_build_id=codebuild_build_id,
        build_status=build_status,
        current_phase=current,
        current_context=current_context,
        phases=[p for p in phases if p],
        logs_url=usable_logs_url(logs.get("deep-link")),
        timeout_minutes=info.get("timeout-in-minutes"),
        log_group=str(logs.get("group-name") or ""),
        log_stream=str(logs.get("stream-name") or ""),
    )


def _answer_time(value: Any) -> str | None:
    """A BatchGetBuilds time as the report holds it: UTC, whole seconds (as events carry them)."""
    when = parse_codebuild_time(value)
    return when.astimezone(UTC).replace(microsecond=0).isoformat() if when else None


def codebuild_report_from_build(build: dict[str, Any]) -> CodebuildReport:
    """A BatchGetBuilds answer (a build of our project: the reconciler asked for it by id) → a report."""
    phases = [
        {
            "phase": phase["phaseType"].upper(),
            "status": phase["phaseStatus"].upper() if phase.get("phaseStatus") else None,
            "start": _answer_time(phase.get("startTime")),
            "end": _answer_time(phase.get("endTime")),
            "duration": _number(phase.get("durationInSeconds")),
            "context": _context(phase.get("contexts")),
        }
        for phase in build.get("phases") or []
        if isinstance(phase.get("phaseType"), str) and phase.get("phaseType")
    ]
    current_context = next(
        (_context(p.get("contexts")) for p in reversed(build.get("phases") or []) if p.get("contexts")), []
    )
    return CodebuildReport(
        codebuild_build_id=codebuild_id_from_arn(str(build.get("arn") or build.get("id") or "")),
        build_status=str(build.get("buildStatus") or "").upper(),
        current_phase=str(build.get("currentPhase") or "").upper(),
        current_context=current_context,
        phases=phases,
        logs_url=usable_logs_url((build.get("logs") or {}).get("deepLink")),
        log_group=str((build.get("logs") or {}).get("groupName") or ""),
        log_stream=str((build.get("logs") or {}).get("streamName") or ""),
    )
