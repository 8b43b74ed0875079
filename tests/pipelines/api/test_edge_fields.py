"""What the API says about the edge: a pipeline's local address, and of a build whether it was a
rollback, which build's stored files it serves, whether its own are stored and how long it took."""

from __future__ import annotations

import pytest

from pipelines import services
from pipelines.choices import BuildKind, BuildTrigger
from tests.operations.edge_support import ready_pipeline, run_deploy

pytestmark = pytest.mark.django_db


def test_local_url_is_the_local_edge_address_when_the_service_runs_one(api, user, settings):
    pipeline = ready_pipeline("hello", owner=user)
    settings.TROY_LOCAL_EDGE_PORT = 0
    assert api.get(f"/api/v1/pipelines/{pipeline.pk}/").json()["local_url"] == ""
    settings.TROY_LOCAL_EDGE_PORT = 8001
    body = api.get("/api/v1/pipelines/").json()["results"][0]
    assert body["local_url"] == "http://hello.localhost:8001/"
    assert body["site_url"] == f"https://hello.{settings.TROY_BASE_DOMAIN}/"


def test_a_rollback_says_so_and_names_the_build_it_serves(api, user, broker):
    pipeline = ready_pipeline("shop", owner=user)
    first = run_deploy(pipeline, store=lambda build: None)
    rollback = run_deploy(pipeline, rollback_of=first)

    stored = api.get(f"/api/v1/builds/{first.pk}/").json()
    assert (stored["is_rollback"], stored["content_build"], stored["stored"]) == (False, None, True)
    assert stored["duration_seconds"] == pytest.approx((first.finished_at - first.started_at).total_seconds())
    rolled = api.get(f"/api/v1/builds/{rollback.pk}/").json()
    assert (rolled["is_rollback"], rolled["content_build"], rolled["stored"]) == (True, str(first.pk), False)
    assert rolled["source_build"] == str(first.pk)
    assert rolled["duration_seconds"] >= 0


def test_a_build_that_has_not_ended_has_no_duration(api, user, broker):
    pipeline = ready_pipeline("queued", owner=user)
    build = services.build_request(
        pipeline_id=pipeline.pk, kind=BuildKind.AUTOMATED, trigger=BuildTrigger.MANUAL, ref="main", actor="test"
    )
    body = api.get(f"/api/v1/builds/{build.pk}/").json()
    assert (body["duration_seconds"], body["stored"], body["is_rollback"]) == (None, False, False)
