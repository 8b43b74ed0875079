"""``troy pipelines list|create|show|provision|delete`` against the live API."""

from __future__ import annotations

import pytest

from pipelines.choices import PipelineStatus as S
from pipelines.models import Pipeline
from tests.factories import PipelineFactory, grant_repository

pytestmark = pytest.mark.django_db(transaction=True)


def test_create_then_list_and_show_by_name_and_by_id(troy, user, settings):
    settings.TROY_BASE_DOMAIN = "sites.example.com"
    grant_repository(user, "octo-org/docs")
    created = troy(
        "pipelines",
        "create",
        "docs",
        "--repository",
        "octo-org/docs",
        "--branch",
        "trunk",
        "--install",
        "npm ci",
        "--build",
        "npm run build",
        "--test",
        "npm test",
        "--output-dir",
        "site/out",
        "--no-auto-deploy",
    )
    assert created.code == 0, created
    assert "Created pipeline docs." in created.err
    assert "https://docs.sites.example.com/" in created.out and "pre_provisioned" in created.out

    pipeline = Pipeline.objects.get(name="docs")
    assert pipeline.owner == user and pipeline.branch == "trunk" and pipeline.build_test == "npm test"
    assert pipeline.build_output_dir == "site/out" and pipeline.auto_deploy is False

    PipelineFactory(name="other", owner=user)
    listed = troy("pipelines", "list")
    assert listed.code == 0, listed
    header, *rows = listed.out.splitlines()
    assert header.split()[:2] == ["NAME", "STATUS"]
    assert [row.split()[0] for row in rows] == ["docs", "other"]
    assert "octo-org/docs@trunk" in rows[0]

    by_name = troy("pipelines", "show", "docs", "--json")
    by_id = troy("--json", "pipelines", "show", str(pipeline.id))
    assert by_name.code == by_id.code == 0
    assert by_name.json() == by_id.json()
    assert by_name.json()["build"] == {
        "install": "npm ci",
        "build": "npm run build",
        "test": "npm test",
        "output_dir": "site/out",
    }

    shown = troy("pipelines", "show", "docs")
    assert "repository:   octo-org/docs (branch trunk)" in shown.out
    assert "you may:      request_provisioning, schedule_deletion" in shown.out


def test_list_json_is_every_pipeline_across_pages(troy, user, settings, monkeypatch):
    for n in range(105):  # more than one page of 100
        PipelineFactory(name=f"site-{n:03d}", owner=user)
    PipelineFactory(name="not-mine")
    result = troy("pipelines", "list", "--json")
    assert result.code == 0, result
    names = [p["name"] for p in result.json()]
    assert names == [f"site-{n:03d}" for n in range(105)]


def test_a_name_is_matched_exactly_not_by_search_hit(troy, user):
    PipelineFactory(name="blog-staging", owner=user)
    result = troy("pipelines", "show", "blog")
    assert result.code == 1, result
    assert "no pipeline named 'blog'" in result.err


def test_create_with_provision_requests_it(troy, broker):
    result = troy("pipelines", "create", "fast", "--provision", "--json")
    assert result.code == 0, result
    assert result.json()["status"] == S.PROVISION_REQUEST
    assert Pipeline.objects.get(name="fast").status == S.PROVISION_REQUEST


def test_field_errors_are_shown_per_field(troy):
    result = troy("pipelines", "create", "Not_A_DNS_Label")
    assert result.code == 1, result
    assert result.err.startswith("error: Invalid input. (invalid)")
    assert "\n  name: " in result.err
    assert not Pipeline.objects.exists()


def test_delete_asks_for_yes_then_schedules_and_a_second_delete_shows_the_409(troy, user, broker):
    pipeline = PipelineFactory(name="old", owner=user)

    refused = troy("pipelines", "delete", "old")
    assert refused.code == 2 and "without --yes" in refused.err, refused
    assert Pipeline.objects.get(pk=pipeline.pk).status == S.PRE_PROVISIONED

    deleted = troy("pipelines", "delete", "old", "--yes", "--json")
    assert deleted.code == 0, deleted
    assert deleted.json()["status"] == S.SCHEDULED_FOR_DELETION

    again = troy("pipelines", "delete", str(pipeline.id), "--yes")
    assert again.code == 1, again
    assert "(invalid_transition)" in again.err
    assert "current status: scheduled_for_deletion" in again.err
    assert "allowed now: " in again.err


def test_someone_elses_pipeline_is_not_found(troy, other_user):
    theirs = PipelineFactory(name="theirs", owner=other_user)
    assert troy("pipelines", "show", "theirs").code == 1
    result = troy("pipelines", "show", str(theirs.id))
    assert result.code == 1 and "no pipeline named" in result.err, result
