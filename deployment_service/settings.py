"""Django settings, read from the environment.

Every default lets a fresh checkout run on embedded pieces: a SQLite file, an in-process Dramatiq
broker and (through ``manage.py devserver``) a local AWS emulator. Production sets the variables
listed in the README (and ``docs/settings.md``).
"""

import contextlib
import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name}={raw!r} is not a boolean (use 1/0, true/false)")


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name}={raw!r} is not an integer") from exc


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in env_str(name, default).split(",") if item.strip()]


DEBUG = env_bool("DJANGO_DEBUG", False)
SECRET_KEY = env_str("DJANGO_SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG and env_bool("TROY_REQUIRE_SECRET_KEY", False):
        raise ImproperlyConfigured("DJANGO_SECRET_KEY must be set")
    # Development default only; production sets DJANGO_SECRET_KEY (the Dockerfile requires it).
    SECRET_KEY = "insecure-development-key-set-DJANGO_SECRET_KEY-in-production"
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1],testserver")
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_fsm",
    "django_dramatiq",
    "deployment_service",
    "pipelines",
    "releases",
    "events",
    "hooks",
    "operations",  # last: declares every actor once django_dramatiq has set the broker
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "operations.urls"
WSGI_APPLICATION = "deployment_service.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database -----------------------------------------------------------------------------------
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

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(env_str("DJANGO_STATIC_ROOT", str(BASE_DIR / "staticfiles")))
# WhiteNoise warns on every start when the folder is missing (before any `collectstatic`)
with contextlib.suppress(OSError):
    STATIC_ROOT.mkdir(parents=True, exist_ok=True)
# Without `collectstatic` (development, tests) WhiteNoise serves straight from the apps' folders.
WHITENOISE_USE_FINDERS = True
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "whitenoise.storage.CompressedManifestStaticFilesStorage"
            if env_bool("TROY_MANIFEST_STATIC", False)
            else "django.contrib.staticfiles.storage.StaticFilesStorage"
        )
    },
}

# --- REST API -----------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": env_int("TROY_API_PAGE_SIZE", 50),
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "deployment_service.exceptions.api_exception_handler",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Troy deployment service API",
    "DESCRIPTION": "Static sites on your own AWS account: pipelines, builds, releases, events.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    # Swagger UI served from our own static files: /api/docs/ works without internet access.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # One name per choice set: events use all 13 statuses (with ``deleted``), pipelines the 12 a row holds.
    "ENUM_NAME_OVERRIDES": {
        "PipelineStatusEnum": "pipelines.choices.ROW_STATUSES",
        "EventStatusEnum": "pipelines.choices.PipelineStatus",
        "BuildStatusEnum": "pipelines.choices.BuildStatus",
        "ReleaseStatusEnum": "releases.choices.ReleaseStatus",
    },
}

# --- Dramatiq -----------------------------------------------------------------------------------
DRAMATIQ_BROKER_URL = env_str("DRAMATIQ_BROKER_URL")
_DRAMATIQ_MIDDLEWARE = [
    "dramatiq.middleware.AgeLimit",
    "dramatiq.middleware.TimeLimit",
    "dramatiq.middleware.Callbacks",
    "dramatiq.middleware.Retries",
    "django_dramatiq.middleware.DbConnectionsMiddleware",
]
if DRAMATIQ_BROKER_URL.startswith(("amqp://", "amqps://")):
    DRAMATIQ_BROKER = {
        "BROKER": "dramatiq.brokers.rabbitmq.RabbitmqBroker",
        "OPTIONS": {"url": DRAMATIQ_BROKER_URL},
        "MIDDLEWARE": _DRAMATIQ_MIDDLEWARE,
    }
elif DRAMATIQ_BROKER_URL.startswith(("redis://", "rediss://")):
    DRAMATIQ_BROKER = {
        "BROKER": "dramatiq.brokers.redis.RedisBroker",
        "OPTIONS": {"url": DRAMATIQ_BROKER_URL, "namespace": env_str("TROY_REDIS_NAMESPACE", "troy")},
        "MIDDLEWARE": _DRAMATIQ_MIDDLEWARE,
    }
elif DRAMATIQ_BROKER_URL == "":
    # In-process broker: `manage.py devserver` runs a worker thread beside the web server.
    DRAMATIQ_BROKER = {
        "BROKER": "dramatiq.brokers.stub.StubBroker",
        "OPTIONS": {},
        "MIDDLEWARE": _DRAMATIQ_MIDDLEWARE,
    }
else:
    raise ImproperlyConfigured("DRAMATIQ_BROKER_URL must start with amqp://, amqps://, redis:// or rediss://")
DRAMATIQ_TASKS_DATABASE = "default"
DRAMATIQ_AUTODISCOVER_MODULES = ["tasks", "github_tasks"]  # hooks.github_tasks: GitHub deliveries

# --- AWS ----------------------------------------------------------------------------------------
AWS_REGION = env_str("AWS_REGION", env_str("AWS_DEFAULT_REGION", "us-east-1"))
AWS_ENDPOINT_URL = env_str("AWS_ENDPOINT_URL")
TROY_BASE_DOMAIN = env_str("TROY_BASE_DOMAIN", "sites.troy.test").strip(".").lower()
TROY_HOSTED_ZONE_ID = env_str("TROY_HOSTED_ZONE_ID")
TROY_ACM_CERTIFICATE_ARN = env_str(
    "TROY_ACM_CERTIFICATE_ARN",
    "arn:aws:acm:us-east-1:123456789012:certificate/00000000-0000-0000-0000-000000000000",
)
TROY_LIVE_BUCKET = env_str("TROY_LIVE_BUCKET", "troy-live")
TROY_ARTIFACT_BUCKET = env_str("TROY_ARTIFACT_BUCKET", "troy-artifacts")
TROY_CODEBUILD_PROJECT = env_str("TROY_CODEBUILD_PROJECT", "troy-build")
TROY_CODEBUILD_SERVICE_ROLE = env_str("TROY_CODEBUILD_SERVICE_ROLE", "arn:aws:iam::123456789012:role/troy-codebuild")
TROY_CODEBUILD_TIMEOUT_MINUTES = env_int("TROY_CODEBUILD_TIMEOUT_MINUTES", 30)
TROY_CODEBUILD_IMAGE = env_str("TROY_CODEBUILD_IMAGE", "aws/codebuild/standard:7.0")
TROY_SNS_TOPIC_ARNS = env_list("TROY_SNS_TOPIC_ARNS")
TROY_SNS_TOPIC_NAME = env_str("TROY_SNS_TOPIC_NAME", "troy-codebuild")
TROY_SNS_VERIFY_SIGNATURES = env_bool("TROY_SNS_VERIFY_SIGNATURES", True)
if not TROY_SNS_VERIFY_SIGNATURES and not DEBUG:
    raise ImproperlyConfigured("TROY_SNS_VERIFY_SIGNATURES=0 is only allowed with DJANGO_DEBUG=1 (local emulators)")

# --- GitHub App ---------------------------------------------------------------------------------
GITHUB_APP_ID = env_str("GITHUB_APP_ID")
GITHUB_APP_PRIVATE_KEY = env_str("GITHUB_APP_PRIVATE_KEY").replace("\\n", "\n")
GITHUB_WEBHOOK_SECRET = env_str("GITHUB_WEBHOOK_SECRET")
GITHUB_API_URL = env_str("GITHUB_API_URL", "https://api.github.com").rstrip("/")

# --- Flow deadlines and limits ------------------------------------------------------------------
# A pipeline left in an in-flight status longer than this is failed by the reaper.
TROY_STUCK_PROVISIONING_SECONDS = env_int("TROY_STUCK_PROVISIONING_SECONDS", 30 * 60)
TROY_STUCK_DEPLOYING_SECONDS = env_int("TROY_STUCK_DEPLOYING_SECONDS", (TROY_CODEBUILD_TIMEOUT_MINUTES + 30) * 60)
TROY_STUCK_DELETING_SECONDS = env_int("TROY_STUCK_DELETING_SECONDS", 2 * 60 * 60)
TROY_REAPER_INTERVAL_SECONDS = env_int("TROY_REAPER_INTERVAL_SECONDS", 60)
# A pipeline left in a waiting status (provision_request, queued, scheduled_for_deletion) longer
# than this gets its worker message sent again: a message lost between commit and broker (broker
# down, process killed) must not leave it waiting forever. The actors ignore duplicates.
TROY_RESEND_WAITING_AFTER_SECONDS = env_int("TROY_RESEND_WAITING_AFTER_SECONDS", 5 * 60)
# Builds running longer than this are looked up with BatchGetBuilds by the reconciler.
TROY_RECONCILE_AFTER_SECONDS = env_int("TROY_RECONCILE_AFTER_SECONDS", 10 * 60)

# Release uploads and archives (the deploy step applies the archive limits to CodeBuild output too).
TROY_UPLOAD_MAX_BYTES = env_int("TROY_UPLOAD_MAX_BYTES", 512 * 1024 * 1024)
TROY_ARCHIVE_MAX_ENTRIES = env_int("TROY_ARCHIVE_MAX_ENTRIES", 20_000)
TROY_ARCHIVE_MAX_FILE_BYTES = env_int("TROY_ARCHIVE_MAX_FILE_BYTES", 512 * 1024 * 1024)
TROY_ARCHIVE_MAX_TOTAL_BYTES = env_int("TROY_ARCHIVE_MAX_TOTAL_BYTES", 2 * 1024 * 1024 * 1024)
TROY_ARCHIVE_MAX_RATIO = env_int("TROY_ARCHIVE_MAX_RATIO", 200)
TROY_DEPLOY_CONCURRENCY = env_int("TROY_DEPLOY_CONCURRENCY", 16)
TROY_INVALIDATION_MAX_PATHS = env_int("TROY_INVALIDATION_MAX_PATHS", 15)
FILE_UPLOAD_TEMP_DIR = env_str("TROY_UPLOAD_TEMP_DIR") or None
# Validated uploads wait here until a worker stores them in the artifact bucket (web requests
# never call AWS). With web and workers on separate machines this must be a shared volume.
TROY_UPLOAD_SPOOL_DIR = Path(env_str("TROY_UPLOAD_SPOOL_DIR", str(DATA_DIR / "uploads")))
FILE_UPLOAD_MAX_MEMORY_SIZE = 0  # every upload streams to a temporary file
DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024

# --- Logging ------------------------------------------------------------------------------------
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("TROY_LOG_LEVEL", "INFO")},
    "loggers": {
        "werkzeug": {"level": "WARNING"},
        "botocore": {"level": "WARNING"},
        "django.db.backends": {"level": "INFO"},
    },
}
