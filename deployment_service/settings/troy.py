"""Troy's own deadlines and limits: the reaper and reconciler, release uploads and archives, deploys."""

from pathlib import Path

from deployment_service.settings.aws import TROY_CODEBUILD_TIMEOUT_MINUTES
from deployment_service.settings.database import DATA_DIR
from deployment_service.settings.env import env_int, env_str

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
# A preview whose branch was deleted or whose pull request closed is removed by the periodic care
# this long after (a pull request reopened meanwhile keeps it).
TROY_PREVIEW_CLOSED_GRACE_SECONDS = env_int("TROY_PREVIEW_CLOSED_GRACE_SECONDS", 60 * 60)
# Builds running longer than this are looked up with BatchGetBuilds by the reconciler.
TROY_RECONCILE_AFTER_SECONDS = env_int("TROY_RECONCILE_AFTER_SECONDS", 10 * 60)

# Release uploads and archives (the deploy step applies the archive limits to CodeBuild output too).
TROY_UPLOAD_MAX_BYTES = env_int("TROY_UPLOAD_MAX_BYTES", 512 * 1024 * 1024)
TROY_ARCHIVE_MAX_ENTRIES = env_int("TROY_ARCHIVE_MAX_ENTRIES", 100_000)
TROY_ARCHIVE_MAX_FILE_BYTES = env_int("TROY_ARCHIVE_MAX_FILE_BYTES", 512 * 1024 * 1024)
TROY_ARCHIVE_MAX_TOTAL_BYTES = env_int("TROY_ARCHIVE_MAX_TOTAL_BYTES", 2 * 1024 * 1024 * 1024)
TROY_ARCHIVE_MAX_RATIO = env_int("TROY_ARCHIVE_MAX_RATIO", 200)
TROY_DEPLOY_CONCURRENCY = env_int("TROY_DEPLOY_CONCURRENCY", 16)
FILE_UPLOAD_TEMP_DIR = env_str("TROY_UPLOAD_TEMP_DIR") or None
# Validated uploads wait here until a worker stores them in the artifact bucket (web requests
# never call AWS). With web and workers on separate machines this must be a shared volume.
TROY_UPLOAD_SPOOL_DIR = Path(env_str("TROY_UPLOAD_SPOOL_DIR", str(DATA_DIR / "uploads")))
FILE_UPLOAD_MAX_MEMORY_SIZE = 0  # every upload streams to a temporary file
