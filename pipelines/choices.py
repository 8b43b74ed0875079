"""Status values and their groups. No status string is written anywhere else."""

from django.db import models


class PipelineStatus(models.TextChoices):
    PRE_PROVISIONED = "pre_provisioned", "Pre Provisioned"
    PROVISION_REQUEST = "provision_request", "Provision Request"
    PROVISIONING = "provisioning", "Provisioning"
    READY_FOR_DEPLOYMENT = "ready_for_deployment", "Ready for Deployment"
    QUEUED = "queued", "Queued"
    DEPLOYING = "deploying", "Deploying"
    DEPLOYED = "deployed", "Deployed"
    FAILED_TO_DEPLOY = "failed_to_deploy", "Failed to Deploy"
    SCHEDULED_FOR_DELETION = "scheduled_for_deletion", "Scheduled for Deletion"
    FAILED_TO_PROVISION = "failed_to_provision", "Failed to Provision"
    DELETING = "deleting", "Deleting"
    FAILED_TO_DELETE = "failed_to_delete", "Failed to Delete"
    # Only ever in the event log: the pipeline row is removed, not soft-deleted.
    DELETED = "deleted", "Deleted"


S = PipelineStatus

# A worker is (or should be) doing something right now; the reaper watches these.
IN_FLIGHT = (S.PROVISIONING, S.DEPLOYING, S.DELETING)  # order: TROY_STUCK_*_SECONDS in the reaper
# Waiting for a worker to pick the pipeline up.
WAITING = (S.PROVISION_REQUEST, S.QUEUED, S.SCHEDULED_FOR_DELETION)  # order: WAITING_ACTORS
# Nothing is happening; a user may act.
AT_REST = (
    S.PRE_PROVISIONED,
    S.READY_FOR_DEPLOYMENT,
    S.DEPLOYED,
    S.FAILED_TO_DEPLOY,
    S.FAILED_TO_PROVISION,
    S.FAILED_TO_DELETE,
)
# A distribution exists and can take a deployment.
DEPLOYABLE = (S.READY_FOR_DEPLOYMENT, S.DEPLOYED, S.FAILED_TO_DEPLOY)
# Statuses a deployment request joins without changing the status (a build is queued behind).
DEPLOYMENT_IN_PROGRESS = (S.QUEUED, S.DEPLOYING)
# A pipeline accepts a deployment request (a build, a release, a push) in these.
ACCEPTS_DEPLOYMENT = (*DEPLOYABLE, *DEPLOYMENT_IN_PROGRESS)
# The name (and so the domain) may change only before anything exists on AWS.
NAME_EDITABLE = (S.PRE_PROVISIONED,)
# Statuses a pipeline row can hold (``deleted`` never reaches a row).
ROW_STATUSES = [choice for choice in PipelineStatus.choices if choice[0] != S.DELETED]


class BuildStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"
    SUPERSEDED = "superseded", "Superseded"


class BuildKind(models.TextChoices):
    AUTOMATED = "automated", "Automated (CodeBuild)"
    RELEASE = "release", "Release (uploaded zip)"


class BuildTrigger(models.TextChoices):
    PUSH = "push", "Push webhook"
    MANUAL = "manual", "Manual (API or admin)"
    CLI = "cli", "CLI release"
    ROLLBACK = "rollback", "Rollback (redeploy)"
    PROMOTE = "promote", "Promote (of a preview)"
    PULL_REQUEST = "pull_request", "Pull request webhook"


class PointerKind(models.TextChoices):
    """What an EdgePointer's host is: the pipeline's own (production), a preview's, or a build's
    permalink. Retention keeps what live and preview pointers name; permalinks follow the build."""

    LIVE = "live", "Live (the pipeline's host)"
    PREVIEW = "preview", "Preview"
    PERMALINK = "permalink", "Permalink (one build)"


class PreviewSource(models.TextChoices):
    """Where a preview's builds come from: pushes to a branch matching the pipeline's
    ``preview_branches``, a pull request (``pr-{n}``), or releases uploaded to a label."""

    BRANCH = "branch", "Branch"
    PULL_REQUEST = "pr", "Pull request"
    RELEASE = "release", "Release"


class EnvScope(models.TextChoices):
    """Which builds get a variable: production builds (no preview) or preview builds."""

    ALL = "all", "All builds"
    PRODUCTION = "production", "Production builds"
    PREVIEWS = "previews", "Preview builds"
