#!/usr/bin/env python3
"""Troy's one-command development entry point; needs nothing but Python 3.11+.

    python3 dev.py run  [--port 8000] [--host 127.0.0.1]   # the whole service on this machine
    python3 dev.py test [pytest args]                      # the whole test suite, on every core
    python3 dev.py manage <command> [args]                 # any manage.py command in the venv
    python3 dev.py setup                                   # only create/update .venv (CI uses it)

Each command first makes sure ``.venv`` exists (stdlib ``venv``) and holds ``requirements-dev.txt``
(hash-checked: ``pip install --require-hashes``).
The install runs only when the requirements files (or the Python version) changed since the last
one: a hash of them is stamped into ``.venv``. This file uses the standard library only.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
import secrets
import subprocess
import sys

ROOT = Path(__file__).resolve().parent
VENV = Path(os.environ.get("TROY_VENV", ROOT / ".venv"))
REQUIREMENTS = ROOT / "requirements-dev.txt"
STAMP = VENV / ".troy-requirements.sha256"
MIN_PYTHON = (3, 11)


def say(message: str) -> None:
    print(f"dev.py: {message}", file=sys.stderr, flush=True)


def venv_python() -> Path:
    if os.name == "nt":
        return VENV / "Scripts" / "python.exe"
    return VENV / "bin" / "python"


def requirements_files() -> list[Path]:
    """requirements-dev.txt and every file it includes with ``-r`` (recursively)."""
    seen: list[Path] = []
    pending = [REQUIREMENTS]
    while pending:
        path = pending.pop()
        if path in seen:
            continue
        seen.append(path)
        for line in path.read_text().splitlines():
            line = line.strip()
            for flag in ("-r ", "--requirement ", "-c ", "--constraint "):
                if line.startswith(flag):
                    pending.append((path.parent / line[len(flag) :].strip()).resolve())
    return sorted(seen)


def requirements_hash() -> str:
    digest = hashlib.sha256()
    digest.update(f"{sys.version_info[:3]}".encode())
    for path in requirements_files():
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def run_checked(cmd: list[str], what: str) -> None:
    result = subprocess.run(cmd, cwd=ROOT)
    if result.returncode != 0:
        say(f"{what} failed (exit {result.returncode}): {' '.join(cmd)}")
        sys.exit(result.returncode)


def ensure_venv() -> Path:
    if sys.version_info < MIN_PYTHON:
        say(f"Troy needs Python {'.'.join(map(str, MIN_PYTHON))} or newer; this is {sys.version.split()[0]}")
        sys.exit(2)
    python = venv_python()
    if not python.exists():
        say(f"creating the virtual environment {VENV}")
        import venv

        try:
            venv.EnvBuilder(with_pip=True, clear=VENV.exists()).create(VENV)
        except subprocess.CalledProcessError as exc:
            say(f"could not create {VENV} with pip ({exc}). On Debian/Ubuntu install python3-venv first.")
            sys.exit(1)
    wanted = requirements_hash()
    current = STAMP.read_text().strip() if STAMP.exists() else ""
    if current != wanted:
        why = "requirements changed since the last install" if current else "first install, about a minute"
        say(f"installing {REQUIREMENTS.name} into {VENV} ({why})")
        # Every package comes pinned with its hashes (a lock generated from requirements-dev.in), so
        # nothing unpinned or altered gets in. pip's own output stays on: it is the progress.
        run_checked(
            [
                str(python),
                "-m",
                "pip",
                "install",
                "--disable-pip-version-check",
                "--require-hashes",
                "-r",
                str(REQUIREMENTS),
            ],
            "pip install",
        )
        STAMP.write_text(wanted + "\n")
    return python


def hand_over(cmd: list[str]) -> None:
    """Run ``cmd`` in the venv as if it were this process: same terminal, signals and exit code."""
    env = dict(os.environ, VIRTUAL_ENV=str(VENV), PYTHONUNBUFFERED="1")
    env["PATH"] = str(venv_python().parent) + os.pathsep + env.get("PATH", "")
    os.chdir(ROOT)
    if os.name == "nt":  # no exec on Windows: wait for the child, let Ctrl-C reach it
        process = subprocess.Popen(cmd, env=env)
        while True:
            try:
                sys.exit(process.wait())
            except KeyboardInterrupt:
                continue
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(cmd[0], cmd, env)


def development_environment() -> None:
    """What the dev run needs that production must set itself: a secret key made once per checkout
    (kept in var/, like the dev user's password) and plain HTTP. Values already set win."""
    if not os.environ.get("DJANGO_SECRET_KEY"):
        key_file = Path(os.environ.get("TROY_DATA_DIR") or ROOT / "var") / "dev-secret-key"
        if not key_file.exists():
            key_file.parent.mkdir(parents=True, exist_ok=True)
            key_file.write_text(secrets.token_urlsafe(50) + "\n")
            key_file.chmod(0o600)
        os.environ["DJANGO_SECRET_KEY"] = key_file.read_text().strip()
    os.environ.setdefault("TROY_HTTPS", "0")  # the dev server speaks plain HTTP


def run_tests(python: str, pytest_args: list[str]) -> None:
    """The suite in two passes: everything but the end-to-end tests on every core (pytest-xdist),
    then the end-to-end tests (real worker, web server and moto processes on the real broker) in
    one process, with the cores to themselves. Arguments that choose the processes (-n) or the
    selection (-m) make it one plain pytest run with them."""
    chooses = {"-n", "--numprocesses", "no:xdist", "-m"}
    if any(arg in chooses or arg.startswith(("-n", "--numprocesses=")) for arg in pytest_args):
        hand_over([python, "-m", "pytest", *pytest_args])
    processes = os.environ.get("TROY_TEST_PROCESSES", "auto")
    passes = [
        ["-n", processes, "--dist", "loadgroup", "-m", "not e2e"],
        ["-p", "no:xdist", "-m", "e2e"],
    ]
    env = dict(os.environ, VIRTUAL_ENV=str(VENV), PYTHONUNBUFFERED="1")
    env["PATH"] = str(Path(python).parent) + os.pathsep + env.get("PATH", "")
    codes = []
    for options in passes:
        say(f"pytest {' '.join(options)}")
        try:
            codes.append(subprocess.run([python, "-m", "pytest", *options, *pytest_args], cwd=ROOT, env=env).returncode)
        except KeyboardInterrupt:  # pytest got the Ctrl-C too and has stopped
            sys.exit(130)
    # 5 is "no tests collected": fine for one pass (a path of only unit tests), not for both.
    failures = [code for code in codes if code not in (0, 5)]
    sys.exit(failures[0] if failures else (5 if all(code == 5 for code in codes) else 0))


USAGE = __doc__.split("\n\n")[1]


def main(argv: list[str]) -> None:
    if not argv or argv[0] in {"-h", "--help", "help"}:
        print(__doc__.strip())
        sys.exit(0 if argv else 2)
    command, rest = argv[0], argv[1:]
    if command not in {"run", "test", "manage", "setup"}:
        say(f"unknown command {command!r}\n{USAGE}")
        sys.exit(2)
    python = str(ensure_venv())
    if command == "setup":
        return
    if command in {"run", "manage"}:
        development_environment()
    if command == "run":
        hand_over([python, "manage.py", "devserver", *rest])
    elif command == "test":
        run_tests(python, rest)
    else:
        hand_over([python, "manage.py", *rest])


if __name__ == "__main__":
    main(sys.argv[1:])
