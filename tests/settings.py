"""Settings for the test suite: the app's settings, with the in-process StubBroker for actors.

``DRAMATIQ_BROKER_URL`` from the environment is kept in ``TROY_TEST_BROKER_URL`` (setting and
environment variable) for the end-to-end tests, which start real worker processes against that
broker.
"""

import os

# Kept in the environment too: pytest-xdist's workers start after this ran in the controller.
TROY_TEST_BROKER_URL = os.environ.get("TROY_TEST_BROKER_URL") or os.environ.pop("DRAMATIQ_BROKER_URL", "")
os.environ.pop("DRAMATIQ_BROKER_URL", None)
os.environ["TROY_TEST_BROKER_URL"] = TROY_TEST_BROKER_URL
os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
os.environ.pop("AWS_ENDPOINT_URL", None)  # unit tests talk to in-process moto, never a server
# Not in debug, as in production; so the key must be given, and the test client speaks plain HTTP.
os.environ.setdefault("DJANGO_SECRET_KEY", "test-suite-only-key-never-used-outside-the-tests")
os.environ["TROY_HTTPS"] = "0"

from deployment_service.settings import *  # noqa: E402,F403
from deployment_service.settings.broker import dramatiq_broker  # noqa: E402

DRAMATIQ_BROKER = dramatiq_broker("")  # the StubBroker, whatever DRAMATIQ_BROKER_URL said
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":  # noqa: F405
    # A file, not SQLite's shared-cache memory database: live_server and worker threads then wait
    # on the busy timeout (WAL, IMMEDIATE) instead of failing with "database table is locked".
    import tempfile

    DATABASES["default"]["TEST"] = {  # noqa: F405
        "NAME": os.path.join(tempfile.gettempdir(), f"troy-test-{os.getpid()}.sqlite3"),
    }

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# The App's URL name, so the install link can be built (tests that need it unset say so).
TROY_GITHUB_APP_SLUG = "troy-test"
TROY_EDGE_POINTERS = "local"  # no emulator serves the KeyValueStore data API; Stubber tests set "kvs"
TROY_WILDCARD_DISTRIBUTION = False  # tests count distributions; tests/test_wildcard_distribution.py turns it on
