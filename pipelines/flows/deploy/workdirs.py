"""The deploy step's temporary directories (the artifact and inflated files), and removing those
a killed worker left behind: ``finally`` never runs after SIGKILL or an OOM kill."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
import os
from pathlib import Path
import shutil
import tempfile
import time

from django.conf import settings

PREFIX = "troy-deploy-"
OWNER_FILE = "owner.pid"
# Past the deploy actor's time limit a live worker has given the directory up; before it, a
# directory whose owner still runs is in use.
STALE_AFTER_SECONDS = 60 * 60


@contextmanager
def deploy_workdir() -> Iterator[Path]:
    """A temporary directory for one deploy, recording the process that owns it."""
    with tempfile.TemporaryDirectory(prefix=PREFIX, dir=settings.FILE_UPLOAD_TEMP_DIR) as workdir:
        path = Path(workdir)
        (path / OWNER_FILE).write_text(str(os.getpid()))
        yield path


def _owner_alive(path: Path) -> bool:
    try:
        pid = int((path / OWNER_FILE).read_text())
    except (OSError, ValueError):
        return False
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process: alive
    return True


def stale_workdirs_sweep(*, older_than_seconds: int = STALE_AFTER_SECONDS) -> list[str]:
    """Remove deploy directories older than ``older_than_seconds`` whose owning process is gone.
    Returns their names."""
    root = Path(settings.FILE_UPLOAD_TEMP_DIR or tempfile.gettempdir())
    cutoff = time.time() - older_than_seconds
    removed = []
    for path in root.glob(f"{PREFIX}*"):
        try:
            if not path.is_dir() or path.stat().st_mtime >= cutoff or _owner_alive(path):
                continue
        except OSError:
            continue
        shutil.rmtree(path, ignore_errors=True)
        removed.append(path.name)
    return removed
