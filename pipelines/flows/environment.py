"""The SSM Parameter Store copy of a pipeline's secrets (what ``sync_pipeline_secret`` runs).

The flow reads what the variable row says now and makes SSM match (write the SecureString, or
delete it): run twice, late or out of order, it converges on the row. A transient AWS error is
raised again for the actor's retries; when those are used up the row keeps the error text.
"""

from __future__ import annotations

import logging
import uuid

from deployment_service import aws
from deployment_service.integrations import ssm
from deployment_service.retries import TransientFailure, is_transient
from deployment_service.secret_box import SecretUnreadable
from pipelines import services
from pipelines.models import Build

logger = logging.getLogger(__name__)


class SecretSyncError(Exception):
    """SSM refused the copy for good; the text is free of the value."""


def secret_sync_run(*, pipeline_id: uuid.UUID | str, name: str) -> None:
    try:
        plan = services.env_secret_sync_plan(pipeline_id=pipeline_id, name=name)
    except SecretUnreadable as exc:
        services.env_secret_mark_failed(pipeline_id=pipeline_id, name=name, error=str(exc))
        logger.warning("secret %s of pipeline %s cannot be decrypted; not copied to SSM", name, pipeline_id)
        return
    try:
        if plan.value is None:
            removed = ssm.delete_secret(name=plan.parameter)
            logger.info("secret %s: SSM parameter %s %s", name, plan.parameter, "deleted" if removed else "was gone")
            return
        ssm.put_secret(name=plan.parameter, value=plan.value, description=f"Troy build secret {name}")
    except Exception as exc:
        # An AWS validation message may quote its input: never keep the value in the error text.
        text = services.redact(f"Copying to SSM Parameter Store failed: {aws.error_message(exc)}", [plan.value or ""])
        if is_transient(exc):
            raise TransientFailure(text) from exc
        if plan.value is not None:
            services.env_secret_mark_failed(pipeline_id=pipeline_id, name=name, error=text)
        raise SecretSyncError(text) from None  # the AWS error's own text might quote the value
    if services.env_secret_mark_synced(pipeline_id=pipeline_id, name=name, token=plan.token):
        logger.info("secret %s of pipeline %s copied to %s", name, pipeline_id, plan.parameter)
    else:
        logger.info("secret %s of pipeline %s changed while copying; the next message copies it", name, pipeline_id)


def secrets_ensure_synced(build: Build) -> None:
    """Copy to SSM any secret ``build`` reads that is not there yet (set moments ago, or its
    worker message still queued): CodeBuild would otherwise fail to resolve the reference."""
    for name in services.env_unsynced_secret_names(build):
        secret_sync_run(pipeline_id=build.pipeline_id, name=name)


def secret_sync_give_up(*, pipeline_id: str | None, name: str | None, error: str) -> None:
    if pipeline_id and name:
        services.env_secret_mark_failed(pipeline_id=pipeline_id, name=name, error=error)


def secrets_delete_all(*, pipeline_id: uuid.UUID | str) -> int:
    """Every SSM parameter of the pipeline (its deletion); how many there were."""
    return ssm.delete_under(services.ssm_pipeline_path(pipeline_id))
