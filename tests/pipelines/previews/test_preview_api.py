"""Previews over REST: what a preview shows (source, build, URL, awaiting approval, closing), one
preview, approving a fork's build, and the pipeline's preview settings."""

from __future__ import annotations

from datetime import timedelta

import pytest

from pipelines import services
from pipelines.choices import BuildStatus
from pipelines.models import Build, Pipeline, Preview
from tests.pipelines.previews.support import branch_build, go_live, pr_build, preview_pipeline, start

pytestmark = pytest.mark.django_db


def url(pipeline: Pipeline, tail: str = "") -> str:
    return f"/api/v1/pipelines/{pipeline.id}/previews/{tail}"


@pytest.fixture
def site(user):
    return preview_pipeline(owner=user)


def test_the_list_shows_each_previews_source_build_url_and_approval(site, api, settings):
    settings.TROY_PREVIEW_CLOSED_GRACE_SECONDS = 600
    live = go_live(start(branch_build(site)))
    pr_build(site, 9, fork=True)
    pr_build(site, 3)
    services.preview_mark_closed(pipeline_id=site.id, label="pr-3", actor="t", reason="closed")

    answer = api.get(url(site))
    assert answer.status_code == 200
    rows = {row["label"]: row for row in answer.json()["results"]}
    assert set(rows) == {"feature-login", "pr-3", "pr-9"}
    branch = rows["feature-login"]
    assert (branch["source"], branch["branch"], branch["pull_request"]) == ("branch", "feature/login", None)
    assert branch["build"] == str(live.id) and branch["build_number"] == live.number
    assert branch["url"] == f"https://feature-login--{site.name}.{settings.TROY_BASE_DOMAIN}/"
    assert branch["last_deployed_at"] and branch["created_at"] and branch["awaiting_approval"] is False
    assert branch["closed_at"] is None and branch["removal_at"] is None
    assert (rows["pr-9"]["source"], rows["pr-9"]["pull_request"], rows["pr-9"]["awaiting_approval"]) == ("pr", 9, True)
    closed = Preview.objects.get(label="pr-3")
    assert rows["pr-3"]["removal_at"] is not None
    assert rows["pr-3"]["removal_at"].startswith((closed.closed_at + timedelta(seconds=600)).strftime("%Y-%m-%dT%H:%M"))


def test_one_preview_and_404s(site, api, other_api):
    pr_build(site, 9, fork=True)
    answer = api.get(url(site, "pr-9/"))
    assert answer.status_code == 200 and answer.json()["label"] == "pr-9" and answer.json()["awaiting_approval"]
    assert api.get(url(site, "nope/")).json()["code"] == "not_found"
    assert other_api.get(url(site, "pr-9/")).status_code == 404  # not theirs


def test_approve_answers_202_then_409_nothing_to_approve(site, api, other_api):
    waiting = pr_build(site, 9, fork=True)
    assert other_api.post(url(site, "pr-9/approve/")).status_code == 404
    answer = api.post(url(site, "pr-9/approve/"))
    assert answer.status_code == 202, answer.json()
    body = answer.json()
    assert body["id"] == str(waiting.id) and body["from_fork"] and not body["awaiting_approval"]
    assert body["approved_by"] == site.owner.username and body["preview_label"] == "pr-9"

    again = api.post(url(site, "pr-9/approve/"))
    assert again.status_code == 409 and again.json()["code"] == "nothing_to_approve"
    assert api.post(url(site, "nope/approve/")).status_code == 404
    assert Build.objects.get(pk=waiting.pk).status == BuildStatus.QUEUED


def test_preview_settings_are_set_and_checked_through_the_api(site, api):
    answer = api.patch(
        f"/api/v1/pipelines/{site.id}/", {"preview_branches": ["dev/*"], "pull_request_previews": False}, format="json"
    )
    assert answer.status_code == 200, answer.json()
    assert answer.json()["preview_branches"] == ["dev/*"] and answer.json()["pull_request_previews"] is False
    bad = api.patch(f"/api/v1/pipelines/{site.id}/", {"preview_branches": [" x"]}, format="json")
    assert bad.status_code == 400 and "preview_branches" in bad.json()["errors"]
