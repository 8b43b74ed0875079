"""The automated flow on one machine: local git sources and the local builder (docs/architecture.md,
"The local flow").

TROY_LOCAL_SOURCES: a pipeline's repository may be a local git repository (``file:///abs/path``).
Off unless set: a production service must not read (or build) whatever path a user names.
``python3 dev.py run`` sets it; ``manage.py check`` warns (pipelines.W020) when it is on without
DJANGO_DEBUG.

TROY_BUILDER: ``codebuild`` (StartBuild on the shared project) or ``local`` (the worker runs the
same buildspec's phases in a temporary directory and reports them as CodeBuild's events would be).
The dev run uses ``local`` when CodeBuild is the emulator (moto runs no build).
"""

from django.core.exceptions import ImproperlyConfigured

from deployment_service.settings.env import env_bool, env_int, env_str

TROY_LOCAL_SOURCES = env_bool("TROY_LOCAL_SOURCES", False)
_BUILDERS = ("codebuild", "local")
TROY_BUILDER = env_str("TROY_BUILDER", "codebuild")
if TROY_BUILDER not in _BUILDERS:
    raise ImproperlyConfigured(f"TROY_BUILDER must be one of {', '.join(_BUILDERS)}, not {TROY_BUILDER!r}")
# How often the scheduler asks each local source for its branch head (a new head = a push).
TROY_LOCAL_SOURCES_POLL_SECONDS = env_int("TROY_LOCAL_SOURCES_POLL_SECONDS", 5)
# Each phase of a local build (install, build, test, artifacts) is killed past this.
TROY_LOCAL_BUILD_PHASE_SECONDS = env_int("TROY_LOCAL_BUILD_PHASE_SECONDS", 15 * 60)
# Where local builds get their fresh working directories (empty: the system's temporary directory).
TROY_LOCAL_BUILD_DIR = env_str("TROY_LOCAL_BUILD_DIR") or None
if TROY_LOCAL_SOURCES_POLL_SECONDS <= 0 or TROY_LOCAL_BUILD_PHASE_SECONDS <= 0:
    raise ImproperlyConfigured("TROY_LOCAL_SOURCES_POLL_SECONDS and TROY_LOCAL_BUILD_PHASE_SECONDS must be positive")
