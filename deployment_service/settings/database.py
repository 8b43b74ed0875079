"""The database: SQLite in the data folder by default, any ``DATABASE_URL`` otherwise."""

from pathlib import Path

import dj_database_url

from deployment_service.settings.django import BASE_DIR
from deployment_service.settings.env import env_str

DATA_DIR = Path(env_str("TROY_DATA_DIR", str(BASE_DIR / "var")))
DATABASE_URL = env_str("DATABASE_URL", f"sqlite:///{DATA_DIR / 'troy.sqlite3'}")
DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=60, conn_health_checks=True)}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    Path(DATABASES["default"]["NAME"]).parent.mkdir(parents=True, exist_ok=True)
    # The embedded default shares the file between web threads and the in-process worker:
    # WAL lets readers run beside a writer; IMMEDIATE takes the write lock up front so two
    # transactions never deadlock upgrading a read lock; the timeout waits instead of failing.
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 20,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
