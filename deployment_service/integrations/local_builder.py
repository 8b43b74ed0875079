"""The local builder's processes (``TROY_BUILDER=local``): the buildspec Troy generates for
CodeBuild, read back into phases and run on this machine. Plain data in and out; the
orchestration (reports, logs, cancel) is ``pipelines.flows.local_builds``.

How a phase runs, as CodeBuild runs it as far as a build can tell:

* one ``/bin/sh`` per phase, its commands in order in that one shell (so ``cd`` and ``export``
  carry to the next command), stopping at the first that fails; each phase starts in the source
  directory (``CODEBUILD_SRC_DIR``), and the log gets CodeBuild's ``[Container]`` lines;
* stdout and stderr merged, handed over a batch of lines at a time;
* a new session, so its process group is the phase and everything it started: a time limit, a
  cancel or the worker stopping kills that group (SIGTERM, then SIGKILL after a grace period),
  and whatever a finished phase left running is killed too;
* an environment of only what a build needs (PATH, HOME, locale), the pipeline's variables and
  secrets, ``CODEBUILD_SRC_DIR``, ``TROY_BUILD_ID`` and ``CI``: never the worker's own
  environment (its database URL, AWS credentials and keys stay out).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
import contextlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
import os
import queue
import re
import shlex
import signal
import stat
import subprocess
import threading
import time
from typing import Any
import zipfile

from dramatiq.middleware import Middleware
import yaml

from deployment_service.archives import path_problem

# Buildspec phase → CodeBuild's phase type, in the order they run.
PHASES = (("install", "INSTALL"), ("pre_build", "PRE_BUILD"), ("build", "BUILD"), ("post_build", "POST_BUILD"))
KILL_GRACE_SECONDS = 5.0
# Passed through from the worker's environment when set; nothing else of it is.
PASSED_THROUGH = ("PATH", "HOME", "LANG", "LC_ALL", "TZ", "USER", "LOGNAME")
SUCCEEDED, FAILED, TIMED_OUT, STOPPED = "SUCCEEDED", "FAILED", "TIMED_OUT", "STOPPED"


# A local build's stand-in for a CodeBuild build id: reports and the reconciler tell them apart by it.
LOCAL_BUILD_PREFIX = "local:"


def local_build_id(build_id: object) -> str:
    return f"{LOCAL_BUILD_PREFIX}{build_id}"


def is_local_build_id(codebuild_build_id: str) -> bool:
    return (codebuild_build_id or "").startswith(LOCAL_BUILD_PREFIX)


class LocalBuildError(Exception):
    """The source or the artifacts cannot be handled (an unsafe archive entry, no output dir)."""


# --- the plan -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class LocalPhase:
    phase: str  # CodeBuild's phase type: INSTALL, BUILD, POST_BUILD
    commands: list[str]


@dataclass(frozen=True)
class LocalBuildPlan:
    phases: list[LocalPhase]
    variables: dict[str, str]
    artifacts_base: str  # relative to the source directory


def plan_from_buildspec(buildspec: str) -> LocalBuildPlan:
    """The phases, plain variables and artifact directory of a buildspec made by
    ``codebuild.buildspec_for`` (``env.parameter-store`` is CodeBuild's: the caller gives secrets)."""
    spec = yaml.safe_load(buildspec) or {}
    phases_spec = spec.get("phases") or {}
    phases = [
        LocalPhase(phase=phase_type, commands=[str(c) for c in phases_spec[name].get("commands") or []])
        for name, phase_type in PHASES
        if name in phases_spec
    ]
    variables = {str(k): str(v) for k, v in ((spec.get("env") or {}).get("variables") or {}).items()}
    base = str((spec.get("artifacts") or {}).get("base-directory") or ".")
    return LocalBuildPlan(phases=phases, variables=variables, artifacts_base=base)


def build_environ(*, source_dir: str, build_id: str, values: Mapping[str, str]) -> dict[str, str]:
    """A phase's whole environment: what a shell needs, then the pipeline's ``values``."""
    environ = {name: os.environ[name] for name in PASSED_THROUGH if os.environ.get(name)}
    environ.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin")
    environ.update({"CI": "true", "CODEBUILD_SRC_DIR": source_dir, "TROY_BUILD_ID": build_id})
    environ.update(values)
    return environ


# --- running a phase ----------------------------------------------------------------------------


@dataclass
class PhaseResult:
    phase: str
    status: str  # SUCCEEDED, FAILED, TIMED_OUT, STOPPED
    start: datetime
    end: datetime
    context: list[str] = field(default_factory=list)

    @property
    def duration(self) -> int:
        return max(int((self.end - self.start).total_seconds()), 0)

    def as_report_phase(self) -> dict[str, Any]:
        """The phase as a CodeBuild report holds one."""
        return {
            "phase": self.phase,
            "status": self.status,
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "duration": self.duration,
            "context": self.context,
        }


def container_line(text: str) -> str:
    return f"[Container] {datetime.now(UTC):%Y/%m/%d %H:%M:%S} {text}\n"


# What phase_script prints before each command (the failed one is named in the phase's context).
_RUNNING_LINE = re.compile(r"\[Container\] \S+ \S+ Running command (.*)\n?\Z")


def phase_script(commands: list[str]) -> str:
    """The shell script of one phase: each command announced, run, and the phase ended at the
    first that fails with CodeBuild's words."""
    now = "\"$(date -u '+%Y/%m/%d %H:%M:%S')\""
    lines = []
    for command in commands:
        lines.append(f"printf '[Container] %s Running command %s\\n' {now} {shlex.quote(command)}")
        lines.append(command)
        failed = shlex.quote(f"Command did not exit successfully {command} exit status ")
        lines.append(
            'troy_status=$?; if [ "$troy_status" -ne 0 ]; then '
            f'printf \'[Container] %s %s%s\\n\' {now} {failed} "$troy_status"; exit "$troy_status"; fi'
        )
    return "\n".join(lines) + "\n"


# Process groups of the phases running in this process: stop_all() ends them (worker shutdown).
_running: dict[int, subprocess.Popen] = {}
_shut_down: set[int] = set()  # pids stop_all killed: their phases end as STOPPED
_running_lock = threading.Lock()


def kill_group(process: subprocess.Popen, *, grace: float = KILL_GRACE_SECONDS) -> None:
    """SIGTERM to the phase's process group, SIGKILL to what is left after ``grace`` seconds."""
    try:
        os.killpg(process.pid, signal.SIGTERM)
    except (ProcessLookupError, PermissionError):
        return
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=grace)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)


def stop_all() -> int:
    """Kill every phase running in this process (the worker is stopping); their builds end as
    STOPPED. Returns how many were running."""
    with _running_lock:
        processes = list(_running.values())
        _shut_down.update(_running)
    for process in processes:
        kill_group(process)
    return len(processes)


class LocalBuildsShutdown(Middleware):
    """Dramatiq middleware: a stopping worker (``rundramatiq`` on SIGTERM, the dev run on Ctrl-C)
    kills the process groups of its local builds before it waits for its threads."""

    def before_worker_shutdown(self, broker: Any, worker: Any) -> None:
        stop_all()


def _read_lines(stream: Any, out: queue.Queue) -> None:
    for raw in iter(stream.readline, b""):
        out.put(raw.decode("utf-8", "replace"))
    out.put(None)


def run_phase(
    *,
    phase: LocalPhase,
    cwd: str,
    environ: Mapping[str, str],
    timeout: float,
    on_output: Callable[[str], None],
    should_stop: Callable[[], bool],
    poll_seconds: float = 0.25,
    stop_check_seconds: float = 1.0,
) -> PhaseResult:
    """Run one phase; ``on_output`` gets its output a batch of whole lines at a time (in this
    thread), ``should_stop`` is asked about once a second (a cancel)."""
    start = datetime.now(UTC)
    on_output(container_line(f"Entering phase {phase.phase}"))
    process = subprocess.Popen(
        ["/bin/sh", "-c", phase_script(phase.commands)],
        cwd=cwd,
        env=dict(environ),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    with _running_lock:
        _running[process.pid] = process
    lines: queue.Queue = queue.Queue()
    reader = threading.Thread(target=_read_lines, args=(process.stdout, lines), daemon=True)
    reader.start()
    deadline = time.monotonic() + timeout
    next_stop_check = time.monotonic() + stop_check_seconds
    status, context, last_command = "", [], ""

    def drain(wait: float) -> bool:
        """Hand over what has been read; True once the output has ended."""
        nonlocal last_command
        batch, ended = [], False
        try:
            item = lines.get(timeout=wait)
            while True:
                if item is None:
                    ended = True
                    break
                batch.append(item)
                running = _RUNNING_LINE.match(item)
                if running:
                    last_command = running[1]
                item = lines.get_nowait()
        except queue.Empty:
            pass
        if batch:
            on_output("".join(batch))
        return ended

    try:
        output_ended = False  # the phase may close its output and keep running: limits still apply
        while process.poll() is None:
            if output_ended:
                time.sleep(poll_seconds)
            else:
                output_ended = drain(poll_seconds)
            now = time.monotonic()
            if now >= deadline:
                status, context = (
                    TIMED_OUT,
                    [
                        f"BUILD_TIMED_OUT: the phase ran longer than {timeout:g} seconds (TROY_LOCAL_BUILD_PHASE_SECONDS)"
                    ],
                )
                break
            if now >= next_stop_check:
                next_stop_check = now + stop_check_seconds
                if should_stop():
                    status, context = STOPPED, ["BUILD_STOPPED: the build was cancelled"]
                    break
        if status:
            kill_group(process)
        code = process.wait()
        with _running_lock:
            if process.pid in _shut_down:
                status, context = STOPPED, ["BUILD_STOPPED: the worker stopped"]
    finally:
        # Whatever the phase started and left behind goes with it (and frees the output pipe).
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
        with _running_lock:
            _running.pop(process.pid, None)
            _shut_down.discard(process.pid)
    reader.join(timeout=KILL_GRACE_SECONDS)
    drain(0)
    if not status:
        if code == 0:
            status = SUCCEEDED
        else:
            status = FAILED
            what = f"Error while executing command: {last_command}. " if last_command else ""
            context = [f"COMMAND_EXECUTION_ERROR: {what}Reason: exit status {code}"]
    end = datetime.now(UTC)
    reason = f" ({'; '.join(context)})" if context else ""
    on_output(container_line(f"Phase complete: {phase.phase} State: {status}{reason}"))
    return PhaseResult(phase.phase, status, start, end, context)


# --- source and artifacts -------------------------------------------------------------------------


def extract_source(zip_path: str, dest: str) -> int:
    """Unpack a source zip into ``dest``; refuses entries that would leave it and symbolic links
    (as Download Source from GitHub does). Executable bits are kept. Returns the file count."""
    files = 0
    with zipfile.ZipFile(zip_path) as archive:
        for info in archive.infolist():
            name = info.orig_filename
            problem = path_problem(name.rstrip("/")) if name.rstrip("/") else None
            if problem:
                raise LocalBuildError(f"Source entry {name!r} {problem}.")
            mode = info.external_attr >> 16
            if mode and stat.S_ISLNK(mode):
                raise LocalBuildError(f"Source entry {name!r} is a symbolic link.")
            target = os.path.join(dest, name)
            if name.endswith("/"):
                os.makedirs(target, exist_ok=True)
                continue
            os.makedirs(os.path.dirname(target), exist_ok=True)
            with archive.open(info) as src, open(target, "wb") as out:
                while chunk := src.read(1024 * 1024):
                    out.write(chunk)
            if mode & 0o111:
                os.chmod(target, 0o755)
            files += 1
    return files


def zip_artifacts(*, source_dir: str, base: str, dest: str) -> int:
    """Zip every file under ``base`` (relative to ``source_dir``), paths relative to it, as
    CodeBuild's ``base-directory`` artifacts. Symbolic links are left out. Returns the count."""
    root = os.path.realpath(os.path.join(source_dir, base))
    if not root.startswith(os.path.realpath(source_dir)) or not os.path.isdir(root):
        raise LocalBuildError(f"CLIENT_ERROR: no matching base directory path found for {base}")
    count = 0
    with zipfile.ZipFile(dest, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for folder, dirs, names in os.walk(root):
            dirs[:] = sorted(d for d in dirs if not os.path.islink(os.path.join(folder, d)))
            for name in sorted(names):
                path = os.path.join(folder, name)
                if os.path.islink(path) or not os.path.isfile(path):
                    continue
                archive.write(path, os.path.relpath(path, root))
                count += 1
    if count == 0:
        raise LocalBuildError(f"CLIENT_ERROR: no files found under {base}")
    return count
