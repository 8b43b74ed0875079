"""Local git repositories as a pipeline's source (``file:///absolute/path``): the branch head, what
changed between two commits, and the source archive of one commit. Plain data in and out; every
call runs ``git`` with a time limit and no prompt, and raises :class:`LocalGitError` (its text is
safe to show: git's own message, no environment) when git refuses.

Only used when ``TROY_LOCAL_SOURCES`` is on (the services check it); a worker and the web process
must see the same path (one machine, or a shared volume).
"""

from __future__ import annotations

import os
from pathlib import Path
import subprocess

LOCAL_SOURCE_PREFIX = "file://"
GIT_TIMEOUT_SECONDS = 30
ARCHIVE_TIMEOUT_SECONDS = 300


class LocalGitError(Exception):
    """git could not answer (not a repository, no such branch or commit, git missing, too slow)."""


def is_local_source(repository: str) -> bool:
    return (repository or "").startswith(LOCAL_SOURCE_PREFIX)


def local_source_path(repository: str) -> str:
    """``file:///srv/site`` → ``/srv/site`` (the rest of the URL taken literally, no %-decoding)."""
    return repository[len(LOCAL_SOURCE_PREFIX) :]


def local_source_shape_problem(repository: str) -> str | None:
    """Why ``repository`` is not a usable ``file://`` source, without touching the disk; None when it is."""
    path = local_source_path(repository)
    if not path.startswith("/") or not os.path.isabs(path):
        return "a local source is file:// followed by an absolute path, e.g. file:///home/me/site"
    if "\x00" in path or any(ord(ch) < 32 for ch in path):
        return "the path holds control characters"
    return None


def _git(path: str, *args: str, timeout: float = GIT_TIMEOUT_SECONDS) -> str:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/"),
        "GIT_TERMINAL_PROMPT": "0",
        "LC_ALL": "C",
    }
    try:
        done = subprocess.run(
            ["git", "-C", path, *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=env,
            stdin=subprocess.DEVNULL,
        )
    except FileNotFoundError as exc:
        raise LocalGitError("git is not installed on this machine.") from exc
    except subprocess.TimeoutExpired as exc:
        raise LocalGitError(f"git {args[0]} took longer than {timeout:.0f} seconds.") from exc
    if done.returncode != 0:
        message = (done.stderr or done.stdout).strip().splitlines()
        raise LocalGitError(message[-1] if message else f"git {args[0]} failed (exit {done.returncode}).")
    return done.stdout


def branch_head(path: str, branch: str) -> str:
    """The commit sha at the tip of ``branch``; LocalGitError when the repository or branch is missing."""
    if not Path(path).is_dir():
        raise LocalGitError(f"{path} is not a directory.")
    try:
        _git(path, "rev-parse", "--git-dir")
    except LocalGitError as exc:
        raise LocalGitError(f"{path} is not a git repository.") from exc
    try:
        return _git(path, "rev-parse", "--verify", "--quiet", f"refs/heads/{branch}^{{commit}}").strip()
    except LocalGitError as exc:
        raise LocalGitError(f"{path} has no branch {branch!r}.") from exc


def resolve_commit(path: str, ref_or_sha: str) -> str:
    """A branch name, tag or sha → the full commit sha (a branch wins over a tag of the same name)."""
    for candidate in (f"refs/heads/{ref_or_sha}", ref_or_sha):
        try:
            return _git(path, "rev-parse", "--verify", "--quiet", f"{candidate}^{{commit}}").strip()
        except LocalGitError:
            continue
    raise LocalGitError(f"{path} has no branch or commit {ref_or_sha!r}.")


def changed_files(path: str, old: str, new: str) -> list[str] | None:
    """The paths that differ between commits ``old`` and ``new`` (``git diff --name-only``), or None
    when that cannot be told (no ``old``, or it is gone after a rewrite): then every file counts."""
    if not old:
        return None
    try:
        out = _git(path, "diff", "--name-only", "-z", "--no-renames", old, new)
    except LocalGitError:
        return None
    return [name for name in out.split("\x00") if name]


def archive_zip(path: str, sha: str, dest: str) -> None:
    """``git archive --format=zip`` of commit ``sha`` into the file ``dest`` (the repository root at
    the top of the zip, as CodeBuild's S3 source expects)."""
    _git(path, "archive", "--format=zip", "-o", dest, sha, timeout=ARCHIVE_TIMEOUT_SECONDS)
