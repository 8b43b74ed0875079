"""Sites that are live the way the deploy leaves them: a build gone live through the services
(deployment_finish points the host at it) and its manifest and blobs in the live bucket, written
with edge.manifest's helpers."""

from __future__ import annotations

import hashlib
import mimetypes

from edge.manifest import FileEntry, Manifest, blob_key, content_key, dumps, is_fingerprinted, manifest_key
from pipelines import services
from pipelines.choices import BuildKind, BuildTrigger, PipelineStatus
from pipelines.models import Build, Pipeline
from tests.factories import PipelineFactory, put_in_status


def store_build(
    s3, bucket: str, build: Build, files: dict[str, bytes], *, not_found: str | None = None, rules: dict | None = None
) -> None:
    """rules: the manifest's `rules` (edge.rules.Rules.to_dict()), as the deploy will store them."""
    pipeline_id, build_id = str(build.pipeline_id), str(build.id)
    entries = {}
    for path, body in files.items():
        content_type = mimetypes.guess_type(path)[0] or "application/octet-stream"
        cache = (
            "public, max-age=31536000, immutable" if is_fingerprinted(path) else "public, max-age=0, must-revalidate"
        )
        key = content_key(hashlib.sha256(body).hexdigest(), content_type, cache)
        entries[path] = FileEntry(key=key, type=content_type, cache=cache, size=len(body))
        s3.put_object(
            Bucket=bucket, Key=blob_key(pipeline_id, key), Body=body, ContentType=content_type, CacheControl=cache
        )
    manifest = Manifest(
        pipeline_id=pipeline_id, build_id=build_id, files=entries, not_found=not_found, rules=rules or {}
    )
    s3.put_object(
        Bucket=bucket, Key=manifest_key(pipeline_id, build_id), Body=dumps(manifest), ContentType="application/json"
    )


def ready_pipeline(name: str, **fields) -> Pipeline:
    pipeline = put_in_status(PipelineFactory(name=name, **fields), PipelineStatus.READY_FOR_DEPLOYMENT)
    services.pointer_ensure(pipeline=pipeline)
    return pipeline


def go_live(s3, bucket: str, pipeline: Pipeline, files: dict[str, bytes], **store) -> Build:
    """What a deploy does, in the services' order: queue, start, store, finish (the pointer)."""
    return run_deploy(pipeline, store=lambda build: store_build(s3, bucket, build, files, **store))


def run_deploy(pipeline: Pipeline, *, store=None, rollback_of: Build | None = None) -> Build:
    """A build through the services as the deploy runs it: queued (a redeploy of ``rollback_of``,
    or a manual build), started, stored by ``store(build)``, finished. A rollback writes nothing:
    it finishes serving its source build's stored files."""
    if rollback_of is not None:
        build = services.build_redeploy(build_id=rollback_of.pk, actor="test")
    else:
        build = services.build_request(
            pipeline_id=pipeline.pk,
            kind=BuildKind.AUTOMATED,
            trigger=BuildTrigger.MANUAL,
            ref="main",
            actor="test",
            artifact_key=f"{pipeline.pk}/site.zip",
        )
    started = services.deployment_start(pipeline_id=pipeline.pk)
    assert started is not None and started.pk == build.pk
    if store is not None:
        store(build)
    finished = services.deployment_finish(
        build_id=build.pk, content_build_id=None if rollback_of is None else rollback_of.served_build_id
    )
    assert finished is not None
    return finished
