"""Building zips (good and hostile) and driving a release through upload, store and deploy."""

from __future__ import annotations

import io
from pathlib import Path
import zipfile

from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile

from deployment_service import aws
from edge.manifest import Manifest, blob_key, loads, manifest_key
from pipelines import services as pipeline_services
from pipelines.choices import PointerKind
from pipelines.flows.deploy import deploy_build_run
from pipelines.models import Build, EdgePointer, Pipeline
from releases import services
from releases.storage import release_store_run


def zip_bytes(files: dict[str, bytes | str], *, compresslevel: int = 6) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=compresslevel) as zf:
        for name, content in files.items():
            zf.writestr(name, content)
    return buffer.getvalue()


def upload(data: bytes, name: str = "site.zip") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, data, content_type="application/zip")


def create_distribution(pipeline: Pipeline) -> str:
    """A CloudFront distribution in moto, recorded on the pipeline (as provisioning would)."""
    answer = aws.client("cloudfront").create_distribution(
        DistributionConfig={
            "CallerReference": f"test-{pipeline.id}",
            "Comment": pipeline.name,
            "Enabled": True,
            "Origins": {
                "Quantity": 1,
                "Items": [
                    {
                        "Id": "live",
                        "DomainName": "troy-live.s3.amazonaws.com",
                        "OriginPath": f"/{pipeline.id}",
                        "S3OriginConfig": {"OriginAccessIdentity": ""},
                    }
                ],
            },
            "DefaultCacheBehavior": {
                "TargetOriginId": "live",
                "ViewerProtocolPolicy": "redirect-to-https",
                "CachePolicyId": "658327ea-f89d-4fab-a63d-7e88639e58f6",
            },
            "DefaultRootObject": "index.html",
        }
    )
    distribution_id = answer["Distribution"]["Id"]
    Pipeline.objects.filter(pk=pipeline.pk).update(
        distribution_id=distribution_id, distribution_domain=answer["Distribution"]["DomainName"]
    )
    return distribution_id


def release_and_deploy(pipeline: Pipeline, files: dict[str, bytes | str], *, version: str = "") -> Build:
    """Upload → store → start → deploy, calling each flow as its actor would."""
    release, _build = services.release_upload(
        pipeline=pipeline, upload=upload(zip_bytes(files)), version=version, deploy=True, actor="test"
    )
    release_store_run(release_id=release.id)
    return run_queued(pipeline)


def run_queued(pipeline: Pipeline) -> Build:
    started = pipeline_services.deployment_start(pipeline_id=pipeline.id)
    assert started is not None
    deploy_build_run(build_id=started.id)
    return Build.objects.get(pk=started.pk)


def served_manifest(pipeline: Pipeline) -> Manifest | None:
    """The manifest the pipeline's pointer names (None when nothing is live)."""
    pointer = EdgePointer.objects.filter(pipeline=pipeline, kind=PointerKind.LIVE).first()
    if pointer is None or pointer.build_id is None:
        return None
    raw = aws.client("s3").get_object(
        Bucket=settings.TROY_LIVE_BUCKET, Key=manifest_key(str(pipeline.id), str(pointer.build_id))
    )["Body"]
    return loads(raw.read())


def live_objects(pipeline: Pipeline) -> dict[str, dict]:
    """What the live build serves: relative path → HEAD answer of its blob ({} when nothing is live)."""
    manifest = served_manifest(pipeline)
    if manifest is None:
        return {}
    s3 = aws.client("s3")
    return {
        path: s3.head_object(Bucket=settings.TROY_LIVE_BUCKET, Key=blob_key(str(pipeline.id), entry.key))
        for path, entry in manifest.files.items()
    }


def live_body(pipeline: Pipeline, path: str) -> bytes:
    manifest = served_manifest(pipeline)
    assert manifest is not None, "nothing is live"
    key = blob_key(str(pipeline.id), manifest.files[path].key)
    return aws.client("s3").get_object(Bucket=settings.TROY_LIVE_BUCKET, Key=key)["Body"].read()


def live_files(pipeline: Pipeline) -> dict[str, bytes]:
    """What the live build serves: relative path → bytes ({} when nothing is live)."""
    manifest = served_manifest(pipeline)
    if manifest is None:
        return {}
    s3 = aws.client("s3")
    return {
        path: s3.get_object(Bucket=settings.TROY_LIVE_BUCKET, Key=blob_key(str(pipeline.id), entry.key))["Body"].read()
        for path, entry in manifest.files.items()
    }


def bucket_keys(pipeline: Pipeline) -> dict[str, object]:
    """Every object under the pipeline's prefix in the live bucket → its LastModified."""
    s3 = aws.client("s3")
    found = {}
    for page in s3.get_paginator("list_objects_v2").paginate(
        Bucket=settings.TROY_LIVE_BUCKET, Prefix=f"{pipeline.id}/"
    ):
        for obj in page.get("Contents", []) or []:
            found[obj["Key"]] = obj["LastModified"]
    return found


def spool_files(spool: Path) -> list[str]:
    return sorted(p.name for p in spool.iterdir()) if spool.exists() else []
