"""Hostile and broken uploads: refused with a stable code naming the entry; nothing is stored
(no row, no spool file, no temporary file, no S3 object) and the pipeline does not change."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
import pytest

from deployment_service import aws
from events.models import Event
from pipelines.choices import PipelineStatus as S
from pipelines.models import Build, Pipeline
from releases.models import Release
from tests.factories import PipelineFactory, put_in_status
from tests.releases.bad_archives import CORPUS
from tests.releases.helpers import spool_files, upload, zip_bytes

pytestmark = pytest.mark.django_db


@pytest.fixture
def pipeline(user, aws):
    return put_in_status(PipelineFactory(owner=user, repository=""), S.DEPLOYED)


@pytest.fixture
def limits(settings):
    settings.TROY_ARCHIVE_MAX_ENTRIES = 10
    settings.TROY_ARCHIVE_MAX_FILE_BYTES = 64 * 1024
    settings.TROY_ARCHIVE_MAX_TOTAL_BYTES = 256 * 1024
    settings.TROY_ARCHIVE_MAX_RATIO = 200


def assert_nothing_stored(pipeline: Pipeline, spool: Path) -> None:
    assert Release.objects.count() == 0 and Build.objects.count() == 0 and Event.objects.count() == 0
    assert spool_files(spool) == []
    assert list(Path(settings.FILE_UPLOAD_TEMP_DIR).iterdir()) == []
    for bucket in (settings.TROY_ARTIFACT_BUCKET, settings.TROY_LIVE_BUCKET):
        assert aws.client("s3").list_objects_v2(Bucket=bucket).get("KeyCount") == 0
    assert Pipeline.objects.get(pk=pipeline.pk).status == pipeline.status


@pytest.mark.parametrize("case", sorted(CORPUS))
def test_bad_archive_is_refused_and_nothing_is_stored(case, api, pipeline, spool, request):
    build_zip, http_status, code, entry = CORPUS[case]
    if case != "bomb_300mb_of_zeros":
        request.getfixturevalue("limits")
    answer = api.post(
        f"/api/v1/pipelines/{pipeline.id}/releases/",
        {"file": upload(build_zip()), "deploy": "true", "version": case},
        format="multipart",
    )
    assert answer.status_code == http_status, answer.json()
    body = answer.json()
    assert body["code"] == code, body
    if entry is not None:
        assert body["entry"] == entry and entry in body["detail"]
    assert_nothing_stored(pipeline, spool)


def test_over_the_size_limit_by_content_length_is_413(api, pipeline, settings, spool):
    settings.TROY_UPLOAD_MAX_BYTES = 1024
    answer = api.post(
        f"/api/v1/pipelines/{pipeline.id}/releases/", {"file": upload(b"x" * 200_000)}, format="multipart"
    )
    assert answer.status_code == 413
    assert answer.json() == {
        "code": "upload_too_large",
        "detail": "The upload is larger than the limit of 1024 bytes.",
        "limit": 1024,
    }
    assert_nothing_stored(pipeline, spool)


def test_over_the_size_limit_while_streaming_is_413(api, pipeline, settings, spool):
    # Content-Length is within the limit plus the multipart allowance, so only counting the
    # bytes as they arrive can catch it.
    settings.TROY_UPLOAD_MAX_BYTES = 50_000
    answer = api.post(
        f"/api/v1/pipelines/{pipeline.id}/releases/",
        {"file": upload(zip_bytes({"a.bin": b"\1" * 60_000}, compresslevel=0))},
        format="multipart",
    )
    assert answer.status_code == 413 and answer.json()["code"] == "upload_too_large"
    assert_nothing_stored(pipeline, spool)


def test_a_body_that_is_not_multipart_is_415(api, pipeline, spool):
    answer = api.post(f"/api/v1/pipelines/{pipeline.id}/releases/", {"file": "x"}, format="json")
    assert answer.status_code == 415 and answer.json()["code"] == "unsupported_media_type"
    assert_nothing_stored(pipeline, spool)


def test_a_missing_file_is_400(api, pipeline, spool):
    answer = api.post(f"/api/v1/pipelines/{pipeline.id}/releases/", {"version": "1"}, format="multipart")
    assert answer.status_code == 400 and answer.json()["code"] == "invalid" and "file" in answer.json()["errors"]
    assert_nothing_stored(pipeline, spool)
