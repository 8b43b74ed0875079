"""Provisioning and deletion flows: what the ``provision_pipeline`` and ``delete_pipeline`` actors run.

Each flow has three steps (STYLE rule 3): a short transaction that moves the pipeline into its
in-flight status, the AWS calls outside any transaction, and a new locked transaction that
finishes or fails it. Both are safe to run twice: the CloudFront CallerReference is derived from
the pipeline, Route53 changes are UPSERTs, and "not found" counts as done when deleting.

A transient AWS error (``deployment_service.retries``) leaves the pipeline in its in-flight status
and is raised again, so Dramatiq retries the message and the next attempt resumes; a permanent one
fails the pipeline at once. When the retries are used up, ``*_give_up`` fails it with the last error.
"""

from __future__ import annotations

import logging
import uuid

from botocore.exceptions import BotoCoreError, ClientError
from django.conf import settings

from deployment_service import artifact_keys as key_names
from deployment_service import aws
from deployment_service.exceptions import InvalidTransition
from deployment_service.integrations import cloudfront, edge_router, edge_store, route53, s3_cleanup
from deployment_service.retries import TransientFailure, is_transient
from deployment_service.test_pauses import pause_at
from pipelines import services
from pipelines.choices import PipelineStatus as S
from pipelines.flows.edge import LOCAL_ROUTER_VERSION, delete_pointers
from pipelines.flows.environment import secrets_delete_all
from pipelines.models import Pipeline
from pipelines.signals import pipeline_artifact_keys

logger = logging.getLogger(__name__)

# Errors that mean "AWS said no" (or was unreachable): the pipeline fails with the message kept.
AWS_ERRORS = (
    ClientError,
    BotoCoreError,
    cloudfront.DistributionLookupError,
    edge_router.RouterNotPublished,
    edge_store.KeyValueStoreNotFound,
    route53.HostedZoneNotFound,
    s3_cleanup.S3DeleteError,
)

# Deletion waits for CloudFront to disable the distribution (typically 5–15 minutes on AWS, at
# once on an emulator) by re-enqueueing itself: the first check comes at once, then 1, 2, 4 … s
# apart, at most 120 s; past this many checks it gives up (~96 minutes in all).
DELETION_MAX_ATTEMPTS = 55
DELETION_WAIT_FIRST_SECONDS = 1
DELETION_WAIT_MAX_SECONDS = 120

# Artifact-bucket folders that hold a pipeline's zips; nothing outside them is ever deleted.


def deletion_wait_seconds(attempt: int) -> float:
    """Wait after check ``attempt`` on a distribution being disabled: 0 after the first (what an
    emulator, or a distribution disabled long ago, reports at once is not waited for; a fresh
    message, never a sleep), then 1, 2, 4 … 64, 120, 120, … seconds."""
    if attempt <= 0:
        return 0.0
    return float(min(DELETION_WAIT_FIRST_SECONDS * 2 ** min(attempt - 1, 16), DELETION_WAIT_MAX_SECONDS))


# What Pipeline.edge_router records for a distribution made without the AWS router (the local
# mode: a moto server, the tests), whose sites the local edge serves.
LOCAL_ROUTER = LOCAL_ROUTER_VERSION


def distribution_spec(pipeline: Pipeline, router: edge_router.Router | None = None) -> cloudfront.DistributionSpec:
    """With ``router``: the origin at the bucket's root and the router attached (docs/edge.md).
    Without (the local mode): the old shape, the origin at ``/{pipeline id}``."""
    reference = cloudfront.caller_reference_for(pipeline.id)
    return cloudfront.DistributionSpec(
        caller_reference=reference,
        comment=f"Troy pipeline {pipeline.name} ({reference})",
        alias=pipeline.domain,
        origin_path="" if router else f"/{pipeline.live_prefix}",
        router=router.associations if router else None,
    )


def describe_error(exc: BaseException) -> str:
    if isinstance(exc, (ClientError, BotoCoreError)):
        return aws.error_message(exc)
    if isinstance(exc, AWS_ERRORS):
        return str(exc)
    return f"Unexpected error: {type(exc).__name__}: {exc}"


def _load(pipeline_id: uuid.UUID | str) -> Pipeline | None:
    try:
        return Pipeline.objects.filter(pk=pipeline_id).first()
    except (ValueError, TypeError):  # not a UUID: nothing to do
        return None


# --- provisioning -------------------------------------------------------------------------------


def provision_run(*, pipeline_id: uuid.UUID | str) -> None:
    """provision_request → provisioning → ready_for_deployment, or failed_to_provision with the
    AWS error kept. A pipeline already provisioning is a retried or redelivered message (the
    worker died, or a transient error was raised): the work is idempotent, so it continues. A
    message for a pipeline in any other status is stale and dropped."""
    pipeline = _load(pipeline_id)
    if pipeline is None:
        logger.info("provision: pipeline %s no longer exists; dropping the message", pipeline_id)
        return
    if pipeline.status == S.PROVISION_REQUEST:
        try:
            pipeline = services.pipeline_start_provisioning(pipeline_id=pipeline.id)
        except InvalidTransition:
            logger.info("provision: pipeline %s was taken by another worker", pipeline.name)
            return
    elif pipeline.status == S.PROVISIONING:
        logger.info("provision: pipeline %s is already provisioning; resuming", pipeline.name)
    else:
        logger.info("provision: pipeline %s is %s; stale or duplicate message", pipeline.name, pipeline.status)
        return

    # Outside any transaction: the AWS calls.
    try:
        # The kvs mode attaches the router as published (bootstrap_aws made it; edge_rollout
        # moves it on); the local mode has no AWS router and makes the old shape.
        router = edge_router.router_find() if settings.TROY_EDGE_POINTERS == "kvs" else None
        distribution = _distribution_ensure(pipeline, router)
        pause_at("provision.after_distribution")
        route53.alias_records_upsert(
            zone_id=route53.hosted_zone_id(), name=pipeline.domain, distribution_domain=distribution.domain_name
        )
    except Exception as exc:
        if is_transient(exc):
            logger.warning("provision: pipeline %s, retrying later: %s", pipeline.name, describe_error(exc))
            raise TransientFailure(describe_error(exc)) from exc
        if not isinstance(exc, AWS_ERRORS):
            _fail(services.pipeline_fail_provisioning, pipeline, describe_error(exc))
            raise  # a bug: keep the traceback in the worker's log
        logger.warning("provision: pipeline %s failed: %s", pipeline.name, describe_error(exc))
        _fail(services.pipeline_fail_provisioning, pipeline, describe_error(exc))
        return

    try:
        services.pipeline_finish_provisioning(
            pipeline_id=pipeline.id,
            distribution_id=distribution.id,
            distribution_domain=distribution.domain_name,
            edge_router=router.version if router else LOCAL_ROUTER,
        )
    except InvalidTransition:
        # The reaper failed it meanwhile; the distribution id is recorded and a retry reuses it.
        logger.warning("provision: pipeline %s left provisioning before it finished", pipeline.name)


def provision_give_up(*, pipeline_id: uuid.UUID | str | None, error: str) -> None:
    """The retries of a provisioning are used up: provisioning → failed_to_provision with ``error``."""
    _give_up(pipeline_id, error, S.PROVISIONING, services.pipeline_fail_provisioning, "provision")


def _distribution_ensure(pipeline: Pipeline, router: edge_router.Router | None) -> cloudfront.Distribution:
    """The pipeline's distribution: the one already recorded, else created (or found again after
    a crash between CreateDistribution and saving its id). Its id is saved at once. A recorded
    one is brought to ``router`` (an earlier attempt may have made it with an older router)."""
    if pipeline.distribution_id:
        existing = cloudfront.distribution_get(pipeline.distribution_id)
        if existing is not None:
            if router is not None:
                cloudfront.distribution_attach_router(existing.id, router.associations)
            return existing
        logger.warning(
            "provision: recorded distribution %s of %s is gone; creating it again",
            pipeline.distribution_id,
            pipeline.name,
        )
    distribution = cloudfront.distribution_create(distribution_spec(pipeline, router))
    services.pipeline_record_distribution(
        pipeline_id=pipeline.id, distribution_id=distribution.id, distribution_domain=distribution.domain_name
    )
    return distribution


def _fail(service, pipeline: Pipeline, error: str) -> None:
    try:
        service(pipeline_id=pipeline.id, error=error)
    except InvalidTransition:
        logger.warning("pipeline %s changed status before it could be failed (%s)", pipeline.name, error)


def _give_up(pipeline_id: uuid.UUID | str | None, error: str, status: str, fail, flow: str) -> None:
    """Fail the pipeline with ``error`` if it is still in ``status`` (the flow's in-flight one)."""
    pipeline = _load(pipeline_id) if pipeline_id else None
    if pipeline is None or pipeline.status != status:
        return
    logger.warning("%s: pipeline %s failed after its retries: %s", flow, pipeline.name, error)
    _fail(fail, pipeline, error)


# --- deletion -----------------------------------------------------------------------------------


def deletion_run(*, pipeline_id: uuid.UUID | str, attempt: int = 0) -> float | None:
    """One pass of the deletion. Returns the seconds to wait before the next pass (CloudFront is
    still disabling the distribution), or ``None`` when finished, failed or stale.

    scheduled_for_deletion → deleting on the first pass; later passes (the actor re-sending
    itself) find the pipeline deleting and continue. At the end the ``deleted`` event is written
    and the row removed."""
    pipeline = _load(pipeline_id)
    if pipeline is None:
        logger.info("delete: pipeline %s no longer exists; dropping the message", pipeline_id)
        return None
    if pipeline.status == S.SCHEDULED_FOR_DELETION:
        try:
            pipeline = services.pipeline_start_deletion(pipeline_id=pipeline.id)
        except InvalidTransition:
            logger.info("delete: pipeline %s was taken by another worker", pipeline.name)
            return None
    elif pipeline.status != S.DELETING:
        logger.info("delete: pipeline %s is %s; stale or duplicate message", pipeline.name, pipeline.status)
        return None

    try:
        wait = _deletion_pass(pipeline, attempt)
    except Exception as exc:
        if is_transient(exc):
            logger.warning("delete: pipeline %s, retrying later: %s", pipeline.name, describe_error(exc))
            raise TransientFailure(describe_error(exc)) from exc
        if not isinstance(exc, AWS_ERRORS):
            _fail(services.pipeline_fail_deletion, pipeline, describe_error(exc))
            raise
        logger.warning("delete: pipeline %s failed: %s", pipeline.name, describe_error(exc))
        _fail(services.pipeline_fail_deletion, pipeline, describe_error(exc))
        return None

    if wait is not None:
        if attempt >= DELETION_MAX_ATTEMPTS:
            _fail(
                services.pipeline_fail_deletion,
                pipeline,
                f"Gave up waiting for CloudFront distribution {pipeline.distribution_id} to be disabled "
                f"after {attempt + 1} checks; schedule the deletion again to retry.",
            )
            return None
        return wait

    try:
        services.pipeline_finish_deletion(pipeline_id=pipeline.id)
    except InvalidTransition:
        logger.warning("delete: pipeline %s left deleting before it finished", pipeline.name)
    return None


def deletion_give_up(*, pipeline_id: uuid.UUID | str | None, error: str) -> None:
    """The retries of a deletion are used up: deleting → failed_to_delete with ``error``."""
    _give_up(pipeline_id, error, S.DELETING, services.pipeline_fail_deletion, "delete")


def _deletion_pass(pipeline: Pipeline, attempt: int) -> float | None:
    """Records, then distribution (disable → wait until deployed → delete), then files."""
    route53.alias_records_delete(zone_id=route53.hosted_zone_id(), name=pipeline.domain)
    pause_at("delete.after_records")
    # The host leaves the KeyValueStore (kvs mode) while its pointer rows still name it.
    delete_pointers(pipeline)

    distribution_id = pipeline.distribution_id
    if not distribution_id:
        # Provisioning may have created one and crashed before saving its id.
        found = cloudfront.distribution_find(distribution_spec(pipeline))
        if found is not None:
            distribution_id = pipeline.distribution_id = found.id
            services.pipeline_record_distribution(
                pipeline_id=pipeline.id, distribution_id=found.id, distribution_domain=found.domain_name
            )
    if distribution_id:
        distribution = cloudfront.distribution_get(distribution_id)
        if distribution is not None:
            if distribution.enabled:
                if cloudfront.distribution_disable(distribution_id):
                    logger.info("delete: disabling distribution %s of %s", distribution_id, pipeline.name)
                    return deletion_wait_seconds(attempt)
            elif not distribution.deployed:
                return deletion_wait_seconds(attempt)
            else:
                try:
                    cloudfront.distribution_delete(distribution_id, etag=distribution.etag)
                except ClientError as exc:
                    if aws.error_code(exc) != "PreconditionFailed":
                        raise
                    return deletion_wait_seconds(attempt)  # changed since we read it: look again

    s3_cleanup.prefix_delete(bucket=settings.TROY_LIVE_BUCKET, prefix=f"{pipeline.live_prefix}/")
    s3_cleanup.keys_delete(bucket=settings.TROY_ARTIFACT_BUCKET, keys=artifact_keys(pipeline))
    secrets_delete_all(pipeline_id=pipeline.id)  # its build secrets' SSM copies
    return None


def artifact_keys(pipeline: Pipeline) -> set[str]:
    """The pipeline's zips in the artifact bucket: downloaded sources and CodeBuild artifacts (by
    convention and as recorded on its builds), and those the apps above keep for it (releases'
    uploads), which they name in answer to ``pipeline_artifact_keys``: this layer knows no releases."""
    keys: set[str] = {key_names.deployed_marker_key(pipeline.id)}
    for _receiver, answered in pipeline_artifact_keys.send(sender=Pipeline, pipeline=pipeline):
        keys.update(answered or ())
    for build_id, key in pipeline.builds.values_list("id", "artifact_key"):
        keys.update({key_names.source_key(build_id), key_names.build_artifact_key(build_id), key})
    return {key for key in keys if key and key.startswith(key_names.FOLDERS)}
