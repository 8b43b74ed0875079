"""Where the CLI finds its server and token.

``TROY_URL`` and ``TROY_TOKEN`` from the environment win over the config file that ``troy login``
writes (``$XDG_CONFIG_HOME/troy/config.json``, default ``~/.config/troy/config.json``, mode 0600),
each value on its own: ``TROY_URL`` alone points a saved token at another server.
"""

from __future__ import annotations

from dataclasses import dataclass
import json
import os
from pathlib import Path
import tempfile
from urllib.parse import urlsplit

from troy_cli.errors import ConfigError

LOGIN_HINT = "run `troy login`, or set TROY_URL and TROY_TOKEN"


@dataclass(frozen=True)
class Config:
    url: str
    token: str


def config_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "troy" / "config.json"


def normalize_url(url: str) -> str:
    """``https://troy.example.com/`` or ``…/api/v1/`` → ``https://troy.example.com``."""
    url = url.strip().rstrip("/")
    if url.endswith("/api/v1"):
        url = url[: -len("/api/v1")]
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(f"{url or '(empty)'} is not a server URL", hint="use e.g. https://troy.example.com")
    return url


def read_file() -> dict[str, str]:
    path = config_path()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}", hint=LOGIN_HINT) from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path} does not hold a JSON object", hint=LOGIN_HINT)
    return {k: v for k, v in data.items() if k in ("url", "token") and isinstance(v, str)}


def load() -> Config:
    saved = read_file()
    url = os.environ.get("TROY_URL") or saved.get("url", "")
    token = os.environ.get("TROY_TOKEN") or saved.get("token", "")
    if not url or not token:
        missing = " and ".join(n for n, v in (("server URL", url), ("token", token)) if not v)
        raise ConfigError(f"no {missing} configured", hint=LOGIN_HINT)
    return Config(url=normalize_url(url), token=token)


def save(config: Config) -> Path:
    """Write the config file with mode 0600 (atomically: a reader never sees half a file)."""
    path = config_path()
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".config-", suffix=".json", dir=path.parent)  # created 0600
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump({"url": config.url, "token": config.token}, fh, indent=2)
            fh.write("\n")
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def remove() -> Path | None:
    path = config_path()
    try:
        path.unlink()
    except FileNotFoundError:
        return None
    return path
