"""Run the ``troy`` CLI in-process (its ``main(argv)``) against a live Django server.

The CLI is imported from ``cli/`` the way ``PYTHONPATH=cli python -m troy_cli`` finds it. It talks
HTTP to pytest-django's ``live_server``; AWS is in-process moto (``aws``; ``mock_aws`` patches
botocore for every thread) and Dramatiq work is done by the StubBroker ``worker`` thread.
"""

from __future__ import annotations

from dataclasses import dataclass
import json
from pathlib import Path
import sys
import time

import pytest
from rest_framework.authtoken.models import Token

CLI_DIR = Path(__file__).resolve().parents[2] / "cli"
if str(CLI_DIR) not in sys.path:
    sys.path.insert(0, str(CLI_DIR))

from troy_cli.main import main  # noqa: E402


@dataclass
class Result:
    code: int
    out: str
    err: str

    def json(self):
        return json.loads(self.out)

    def __str__(self) -> str:  # shown by a failing assert
        return f"exit {self.code}\n--- stdout\n{self.out}\n--- stderr\n{self.err}"


@pytest.fixture
def config_home(tmp_path, monkeypatch) -> Path:
    """An empty XDG config folder and no TROY_* variables from the developer's shell."""
    home = tmp_path / "xdg-config"
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home))
    monkeypatch.delenv("TROY_URL", raising=False)
    monkeypatch.delenv("TROY_TOKEN", raising=False)
    return home


@pytest.fixture
def run_cli(capsys, config_home):
    def run(*argv: str) -> Result:
        capsys.readouterr()
        code = main([str(a) for a in argv])
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return run


@pytest.fixture
def token(user) -> str:
    return Token.objects.get_or_create(user=user)[0].key


@pytest.fixture
def troy(run_cli, live_server, token, monkeypatch):
    """The CLI configured through the environment for ``user`` on the live server."""
    monkeypatch.setenv("TROY_URL", live_server.url)
    monkeypatch.setenv("TROY_TOKEN", token)
    return run_cli


def wait_for(condition, *, timeout: float = 30.0, interval: float = 0.05, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")
