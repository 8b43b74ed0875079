"""Settings for the test suite: the app's settings, with the in-process StubBroker for actors.

``DRAMATIQ_BROKER_URL`` from the environment is kept in ``TROY_TEST_BROKER_URL`` for the
end-to-end tests, which start real worker processes against that broker.
"""

import os

TROY_TEST_BROKER_URL = os.environ.pop("DRAMATIQ_BROKER_URL", "")
os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
os.environ.pop("AWS_ENDPOINT_URL", None)  # unit tests talk to in-process moto, never a server

from deployment_service.settings import *  # noqa: E402,F403

DRAMATIQ_BROKER = {
    "BROKER": "dramatiq.brokers.stub.StubBroker",
    "OPTIONS": {},
    "MIDDLEWARE": [
        "dramatiq.middleware.AgeLimit",
        "dramatiq.middleware.TimeLimit",
        "dramatiq.middleware.Callbacks",
        "dramatiq.middleware.Retries",
        "django_dramatiq.middleware.DbConnectionsMiddleware",
        "deployment_service.observability.middleware.ActorLogContext",
    ],
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":  # noqa: F405
    # A file, not SQLite's shared-cache memory database: live_server and worker threads then wait
    # on the busy timeout (WAL, IMMEDIATE) instead of failing with "database table is locked".
    import tempfile

    DATABASES["default"]["TEST"] = {  # noqa: F405
        "NAME": os.path.join(tempfile.gettempdir(), f"troy-test-{os.getpid()}.sqlite3"),
    }

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
