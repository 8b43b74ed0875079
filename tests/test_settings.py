"""Start-up rules of the settings, each in a fresh process with an environment of its own."""

import os
from pathlib import Path
import secrets
import subprocess
import sys

ROOT = Path(__file__).resolve().parents[1]


def manage(tmp_path, *args: str, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "TROY_", "DRAMATIQ_", "DATABASE_"))}
    clean.update(DJANGO_SETTINGS_MODULE="deployment_service.settings", TROY_DATA_DIR=str(tmp_path), **env)
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=clean, capture_output=True, text=True, timeout=120
    )


def test_a_missing_secret_key_without_debug_stops_the_start(tmp_path):
    result = manage(tmp_path, "check")
    assert result.returncode != 0
    assert "ImproperlyConfigured: DJANGO_SECRET_KEY must be set" in result.stderr


def test_check_deploy_is_clean_with_the_documented_production_environment(tmp_path):
    result = manage(
        tmp_path,
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        DJANGO_SECRET_KEY=secrets.token_urlsafe(50),
        DJANGO_ALLOWED_HOSTS="troy.example.com",
        DJANGO_CSRF_TRUSTED_ORIGINS="https://troy.example.com",
        TROY_BEHIND_PROXY="1",
        DRAMATIQ_BROKER_URL="amqp://troy:secret@127.0.0.1:5999/",
        TROY_SECRETS_KEY="x3M6qJbq9Rk1a0JmXc4bq2oJwVv0QnUe7b8m8s0V1dA=",
    )
    assert result.returncode == 0, result.stderr
    assert "System check identified no issues" in result.stdout


def test_a_malformed_secrets_key_stops_the_start(tmp_path):
    result = manage(tmp_path, "check", DJANGO_DEBUG="1", TROY_SECRETS_KEY="not-a-fernet-key")
    assert result.returncode != 0
    assert "TROY_SECRETS_KEY holds a value that is not a Fernet key" in result.stderr
