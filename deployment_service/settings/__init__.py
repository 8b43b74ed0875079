"""Django settings, read from the environment, one module per concern.

Every default lets a fresh checkout run on embedded pieces: a SQLite file, an in-process Dramatiq
broker and (through ``manage.py devserver``) a local AWS emulator. Without ``DJANGO_DEBUG`` the
process refuses to start without ``DJANGO_SECRET_KEY`` and defaults to HTTPS-only settings.
Production sets the variables listed in the README (and ``docs/settings.md``).
"""

from deployment_service.settings.aws import *  # noqa: F403
from deployment_service.settings.broker import *  # noqa: F403
from deployment_service.settings.build_env import *  # noqa: F403
from deployment_service.settings.database import *  # noqa: F403
from deployment_service.settings.django import *  # noqa: F403
from deployment_service.settings.edge import *  # noqa: F403
from deployment_service.settings.github import *  # noqa: F403
from deployment_service.settings.limits import *  # noqa: F403
from deployment_service.settings.local import *  # noqa: F403
from deployment_service.settings.observability import *  # noqa: F403
from deployment_service.settings.troy import *  # noqa: F403
