"""base_dir and watch_paths through the pipeline API: shown, validated, normalised."""

from __future__ import annotations

import pytest

from pipelines.models import Pipeline
from tests.factories import PipelineFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def pipeline(user):
    return PipelineFactory(owner=user)


def patch(api, pipeline, body):
    return api.patch(f"/api/v1/pipelines/{pipeline.id}/", body, format="json")


def test_set_and_shown(api, pipeline):
    answer = patch(api, pipeline, {"base_dir": "apps/web/", "watch_paths": ["apps/web", "packages/**", "!**/*.md"]})
    assert answer.status_code == 200, answer.json()
    assert answer.json()["base_dir"] == "apps/web"
    assert answer.json()["watch_paths"] == ["apps/web", "packages/**", "!**/*.md"]
    pipeline.refresh_from_db()
    assert pipeline.base_dir == "apps/web"
    assert patch(api, pipeline, {"base_dir": "."}).json()["base_dir"] == ""
    assert patch(api, pipeline, {"watch_paths": []}).json()["watch_paths"] == []


@pytest.mark.parametrize(
    "body",
    [
        {"base_dir": "/abs"},
        {"base_dir": "../up"},
        {"base_dir": "a\\b"},
        {"watch_paths": "apps/web"},
        {"watch_paths": ["/apps"]},
        {"watch_paths": ["apps/../x"]},
        {"watch_paths": [""]},
        {"watch_paths": ["p"] * 51},
        {"watch_paths": [5]},
    ],
)
def test_bad_settings_are_refused_and_change_nothing(api, pipeline, body):
    answer = patch(api, pipeline, body)
    assert answer.status_code == 400
    assert answer.json()["code"] == "invalid"
    [field] = body
    assert field in answer.json()["errors"]
    fresh = Pipeline.objects.get(pk=pipeline.pk)
    assert fresh.base_dir == "" and fresh.watch_paths == []


def test_create_with_monorepo_settings(api, user):
    from tests.factories import grant_repository

    grant_repository(user, "octo/mono")
    answer = api.post(
        "/api/v1/pipelines/",
        {"name": "mono", "repository": "octo/mono", "base_dir": "apps/site", "watch_paths": ["apps/site"]},
        format="json",
    )
    assert answer.status_code == 201, answer.json()
    assert answer.json()["base_dir"] == "apps/site" and answer.json()["watch_paths"] == ["apps/site"]
