"""``/api/v1/pipelines/{id}/env/``: who may call it, what it answers, and that no answer, event or
error ever holds a secret's value."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from events.models import Event
from pipelines.choices import PipelineStatus as S
from pipelines.models import PipelineVariable
from tests.factories import PipelineFactory, put_in_status

pytestmark = pytest.mark.django_db

SECRET = "tok_3b7e1f09aa4c"


@pytest.fixture
def pipeline(user):
    return PipelineFactory(owner=user)


def url(pipeline, name: str | None = None) -> str:
    base = f"/api/v1/pipelines/{pipeline.id}/env/"
    return f"{base}{name}/" if name else base


def put(api, pipeline, name, body):
    return api.put(url(pipeline, name), body, format="json")


def test_set_list_get_and_unset(api, pipeline, django_capture_on_commit_callbacks):
    answer = put(api, pipeline, "NODE_ENV", {"value": "production"})
    assert answer.status_code == 200, answer.json()
    assert answer.json() | {"set_at": None} == {
        "name": "NODE_ENV",
        "secret": False,
        "value": "production",
        "scope": "all",
        "set_at": None,
        "set_by": pipeline.owner.username,
        "synced_at": None,
        "sync_error": "",
    }
    with django_capture_on_commit_callbacks() as callbacks:
        answer = put(api, pipeline, "API_KEY", {"value": SECRET, "secret": True, "scope": "production"})
    assert answer.status_code == 200
    assert answer.json()["value"] is None and answer.json()["secret"] is True
    assert len(callbacks) == 1  # the SSM copy, after commit

    listed = api.get(url(pipeline))
    assert listed.status_code == 200
    assert [(v["name"], v["value"], v["scope"]) for v in listed.json()] == [
        ("API_KEY", None, "production"),
        ("NODE_ENV", "production", "all"),
    ]
    assert api.get(url(pipeline, "API_KEY")).json()["value"] is None

    assert api.delete(url(pipeline, "NODE_ENV")).status_code == 204
    assert api.get(url(pipeline, "NODE_ENV")).status_code == 404
    assert api.delete(url(pipeline, "NODE_ENV")).json()["code"] == "not_found"


def test_a_secret_is_in_no_answer_event_or_error(api, pipeline, django_capture_on_commit_callbacks):
    bodies = [
        put(api, pipeline, "API_KEY", {"value": SECRET, "secret": True}),
        put(api, pipeline, "API_KEY", {"value": SECRET + "x" * 5000, "secret": True}),  # too large
        put(api, pipeline, "PATH", {"value": SECRET, "secret": True}),  # reserved
        put(api, pipeline, "API_KEY", {"value": SECRET, "secret": True, "scope": "nope"}),
        api.get(url(pipeline)),
        api.get(url(pipeline, "API_KEY")),
        api.get(f"/api/v1/pipelines/{pipeline.id}/"),
        api.get(f"/api/v1/pipelines/{pipeline.id}/events/"),
        api.get("/api/v1/events/"),
    ]
    for answer in bodies:
        assert SECRET not in answer.content.decode(), answer.request
    assert not [e for e in Event.objects.all() if SECRET in e.message]
    assert SECRET not in PipelineVariable.objects.get(name="API_KEY").value  # encrypted at rest


@pytest.mark.parametrize(
    ("name", "body", "code"),
    [
        ("1BAD", {"value": "x"}, "env_name_invalid"),
        ("AWS_REGION", {"value": "x"}, "env_name_reserved"),
        ("TROY_BUILD_ID", {"value": "x"}, "env_name_reserved"),
        ("OK", {"value": "é" * 3000}, "env_value_too_large"),
        ("OK", {"value": "", "secret": True}, "env_value_invalid"),
        ("OK", {"value": "a\u0000b"}, None),  # strict JSON parsing refuses a NUL first
        ("OK", {"value": "x", "scope": "staging"}, "invalid"),
        ("OK", {}, "invalid"),
        ("OK", {"value": 5}, "invalid"),
    ],
)
def test_bad_input_is_refused_with_a_stable_code_and_changes_nothing(api, pipeline, name, body, code):
    answer = put(api, pipeline, name, body)
    assert answer.status_code == 400
    if code:
        assert answer.json()["code"] == code
    assert not PipelineVariable.objects.exists()


def test_whitespace_of_a_value_is_kept(api, pipeline):
    put(api, pipeline, "PADDED", {"value": "  two spaces  \n"})
    assert api.get(url(pipeline, "PADDED")).json()["value"] == "  two spaces  \n"


def test_too_many_variables(api, pipeline, settings):
    settings.TROY_ENV_MAX_VARIABLES = 1
    assert put(api, pipeline, "A", {"value": "1"}).status_code == 200
    answer = put(api, pipeline, "B", {"value": "1"})
    assert answer.status_code == 400 and answer.json() == {
        "code": "env_limit_reached",
        "detail": f"{pipeline.name} already has 1 variables; unset one first.",
        "limit": 1,
    }


def test_a_pipeline_being_deleted_answers_409(api, pipeline):
    put_in_status(pipeline, S.SCHEDULED_FOR_DELETION)
    answer = put(api, pipeline, "A", {"value": "1"})
    assert answer.status_code == 409 and answer.json()["status"] == "scheduled_for_deletion"


def test_someone_elses_pipeline_is_404_and_no_token_is_401(other_api, pipeline, staff_api, staff_user):
    for call in (
        lambda c: c.get(url(pipeline)),
        lambda c: c.get(url(pipeline, "A")),
        lambda c: c.put(url(pipeline, "A"), {"value": "1"}, format="json"),
        lambda c: c.delete(url(pipeline, "A")),
    ):
        assert call(other_api).status_code == 404
        assert call(APIClient()).status_code == 401
    assert not PipelineVariable.objects.exists()
    assert staff_api.put(url(pipeline, "A"), {"value": "1"}, format="json").status_code == 200
    assert staff_api.get(url(pipeline)).json()[0]["set_by"] == staff_user.username


def test_an_unknown_pipeline_is_404(api):
    assert api.get("/api/v1/pipelines/00000000-0000-0000-0000-000000000000/env/").status_code == 404
    assert api.get("/api/v1/pipelines/not-a-uuid/env/").status_code == 404


def test_the_schema_documents_the_env_endpoints(client):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    paths = schema["paths"]
    assert set(paths["/api/v1/pipelines/{pipeline_id}/env/"]) == {"get"}
    detail = paths["/api/v1/pipelines/{pipeline_id}/env/{name}/"]
    assert {"get", "put", "delete"} <= set(detail)
    assert {"200", "400", "404", "409"} <= set(detail["put"]["responses"])
    assert "value" not in schema["components"]["schemas"]["Variable"].get("required", []) or (
        schema["components"]["schemas"]["Variable"]["properties"]["value"].get("nullable") is True
    )
