"""Configuration: ``troy login`` verifies and saves (0600), the environment wins over the file,
and a missing config, a rejected token or an unreachable server each say so plainly."""

from __future__ import annotations

import json
import socket
import stat

import pytest

pytestmark = pytest.mark.django_db(transaction=True)


def test_login_verifies_the_token_and_writes_the_config_file_with_mode_0600(run_cli, live_server, token, config_home):
    result = run_cli("login", "--url", live_server.url + "/api/v1/", "--token", token)

    assert result.code == 0, result
    path = config_home / "troy" / "config.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert json.loads(path.read_text()) == {"url": live_server.url, "token": token}
    assert str(path) in result.err

    # The saved config is enough on its own.
    listed = run_cli("pipelines", "list", "--json")
    assert listed.code == 0, listed
    assert listed.json() == []


def test_login_with_a_bad_token_says_so_and_saves_nothing(run_cli, live_server, config_home):
    result = run_cli("login", "--url", live_server.url, "--token", "not-a-token")

    assert result.code == 2, result
    assert "token rejected" in result.err and live_server.url in result.err
    assert not (config_home / "troy" / "config.json").exists()


def test_login_without_a_token_and_no_terminal_asks_for_one_in_words(run_cli, live_server):
    result = run_cli("login", "--url", live_server.url)
    assert result.code == 2 and "pass --token" in result.err, result


def test_the_environment_overrides_the_config_file(run_cli, live_server, token, monkeypatch):
    assert run_cli("login", "--url", live_server.url, "--token", token).code == 0

    monkeypatch.setenv("TROY_TOKEN", "revoked-token")
    rejected = run_cli("pipelines", "list")
    assert rejected.code == 2, rejected
    assert "token rejected" in rejected.err and "troy login" in rejected.err

    monkeypatch.delenv("TROY_TOKEN")
    port = closed_port()
    monkeypatch.setenv("TROY_URL", f"http://127.0.0.1:{port}")
    unreachable = run_cli("pipelines", "list")
    assert unreachable.code == 1, unreachable
    assert f"cannot reach Troy at http://127.0.0.1:{port}" in unreachable.err
    assert "connection refused" in unreachable.err


def test_no_configuration_exits_2_with_a_hint(run_cli):
    result = run_cli("pipelines", "list")
    assert result.code == 2, result
    assert result.err.startswith("error: no server URL and token configured")
    assert "troy login" in result.err and "TROY_URL" in result.err
    assert result.out == ""


def test_usage_errors_exit_2(run_cli):
    assert run_cli("release").code == 2
    assert run_cli("rollback", "site", "not-a-number").code == 2


def closed_port() -> int:
    """A loopback port nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_python_m_troy_cli_runs_from_the_cli_folder(config_home):
    import os
    import subprocess
    import sys

    from tests.cli.conftest import CLI_DIR

    env = {**os.environ, "PYTHONPATH": str(CLI_DIR), "XDG_CONFIG_HOME": str(config_home)}
    env.pop("TROY_URL", None)
    env.pop("TROY_TOKEN", None)
    version = subprocess.run(
        [sys.executable, "-m", "troy_cli", "--version"], env=env, capture_output=True, text=True, timeout=30
    )
    assert version.returncode == 0 and version.stdout.startswith("troy "), version
    unconfigured = subprocess.run(
        [sys.executable, "-m", "troy_cli", "builds", "site"], env=env, capture_output=True, text=True, timeout=30
    )
    assert unconfigured.returncode == 2 and "troy login" in unconfigured.stderr, unconfigured
