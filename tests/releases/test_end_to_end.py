"""One release through the real actors: a Dramatiq worker on the StubBroker, committed rows."""

from __future__ import annotations

import time

import pytest

from pipelines.choices import PipelineStatus as S
from pipelines.models import Pipeline
from releases.choices import ReleaseStatus
from releases.models import Release
from tests.factories import PipelineFactory, put_in_status
from tests.releases.helpers import create_distribution, live_body, spool_files, upload, zip_bytes

pytestmark = pytest.mark.django_db(transaction=True)


def wait_for(predicate, *, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("the workers did not get there")
        time.sleep(0.05)


def test_upload_with_deploy_goes_live_through_the_workers(api, user, aws, worker, broker, spool):
    pipeline = put_in_status(PipelineFactory(owner=user, repository=""), S.READY_FOR_DEPLOYMENT)
    create_distribution(pipeline)
    site = {"site/index.html": "<!doctype html><p>live</p>", "site/app.3f9a1c.js": "1"}
    answer = api.post(
        f"/api/v1/pipelines/{pipeline.id}/releases/",
        {"file": upload(zip_bytes(site)), "deploy": "true", "version": "e2e"},
        format="multipart",
    )
    assert answer.status_code == 201, answer.json()

    wait_for(lambda: Pipeline.objects.get(pk=pipeline.pk).status in (S.DEPLOYED, S.FAILED_TO_DEPLOY))
    pipeline = Pipeline.objects.select_related("live_build").get(pk=pipeline.pk)
    assert pipeline.status == S.DEPLOYED, pipeline.last_error
    assert str(pipeline.live_build_id) == answer.json()["build"]["id"]
    assert Release.objects.get().status == ReleaseStatus.STORED and spool_files(spool) == []
    assert live_body(pipeline, "index.html") == b"<!doctype html><p>live</p>"
    assert pipeline.live_build.files_uploaded == 2
