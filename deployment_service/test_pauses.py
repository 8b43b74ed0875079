"""A test-only hook that holds a flow at a named point, so an end-to-end test can kill a worker
"mid provisioning" deterministically (tests/e2e/test_worker_kills.py).

Inert unless ``TROY_TEST_PAUSE_DIR`` is set (never in production). Then, at a point named in
``TROY_TEST_PAUSE_AT`` (comma-separated), the flow writes ``{dir}/{point}.reached`` and sleeps while
``{dir}/{point}.hold`` exists; the test kills the worker there, removes the hold and restarts it.
"""

from __future__ import annotations

import os
from pathlib import Path
import time


def pause_at(point: str) -> None:
    folder = os.environ.get("TROY_TEST_PAUSE_DIR")
    if not folder or point not in os.environ.get("TROY_TEST_PAUSE_AT", "").split(","):
        return
    Path(folder, f"{point}.reached").touch()
    hold = Path(folder, f"{point}.hold")
    while hold.exists():
        time.sleep(0.1)
