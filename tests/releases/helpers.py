"""Building zips (good and hostile) and driving a release through upload, store and deploy."""

from __future__ import annotations

import io
from pathlib import Path
import zipfile

from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile

from deployment_service import aws
from pipelines import services as pipeline_services
from pipelines.flows.deploy import deploy_build_run
from pipelines.models import Build, Pipeline
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


def live_objects(pipeline: Pipeline) -> dict[str, dict]:
    """Relative path → HEAD answer, for every object under the pipeline's prefix."""
    s3 = aws.client("s3")
    prefix = f"{pipeline.id}/"
    found = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=settings.TROY_LIVE_BUCKET, Prefix=prefix):
        for obj in page.get("Contents", []) or []:
            found[obj["Key"][len(prefix) :]] = s3.head_object(Bucket=settings.TROY_LIVE_BUCKET, Key=obj["Key"])
    return found


def live_body(pipeline: Pipeline, path: str) -> bytes:
    return aws.client("s3").get_object(Bucket=settings.TROY_LIVE_BUCKET, Key=f"{pipeline.id}/{path}")["Body"].read()


def spool_files(spool: Path) -> list[str]:
    return sorted(p.name for p in spool.iterdir()) if spool.exists() else []
