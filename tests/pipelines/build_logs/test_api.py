"""``GET /api/v1/builds/{id}/logs/``: offsets, headers, errors, owner scoping, redaction."""

from __future__ import annotations

import uuid

import pytest

from pipelines import services
from pipelines.choices import BuildKind, BuildStatus, BuildTrigger
from pipelines.models import Build
from tests.factories import PipelineFactory

pytestmark = pytest.mark.django_db

SECRET = "ghp_abcdefghijklmnop0123"


def logs_url(build, offset=None) -> str:
    return f"/api/v1/builds/{build.id}/logs/" + ("" if offset is None else f"?offset={offset}")


@pytest.fixture
def build(user, django_capture_on_commit_callbacks) -> Build:
    pipeline = PipelineFactory(owner=user)
    return Build.objects.create(pipeline=pipeline, number=1, kind=BuildKind.AUTOMATED, trigger=BuildTrigger.PUSH)


def test_reads_the_log_in_parts_with_the_next_offset_and_completion(api, build):
    services.build_log_append(build_id=build.id, text="Installing…\n")
    first = api.get(logs_url(build))
    assert first.status_code == 200
    assert first["Content-Type"] == "text/plain; charset=utf-8"
    assert first.content.decode() == "Installing…\n"
    assert first["X-Troy-Log-Next-Offset"] == "12" and first["X-Troy-Log-Complete"] == "false"
    assert first["Cache-Control"] == "no-store"

    services.build_log_append(build_id=build.id, text="Building\n")
    services.build_log_finish(build_id=build.id)
    second = api.get(logs_url(build, 12))
    assert second.content == b"Building\n"
    assert second["X-Troy-Log-Next-Offset"] == "21" and second["X-Troy-Log-Complete"] == "true"
    empty = api.get(logs_url(build, 21))
    assert empty.content == b"" and empty["X-Troy-Log-Next-Offset"] == "21" and empty["X-Troy-Log-Complete"] == "true"


def test_a_client_asking_for_text_plain_gets_it(api, build):
    services.build_log_append(build_id=build.id, text="hello\n")
    response = api.get(logs_url(build), HTTP_ACCEPT="text/plain")
    assert response.status_code == 200 and response.content == b"hello\n"


@pytest.mark.parametrize("offset", ["-1", "abc", "1.5", "7", "99999999999999999999", ""])
@pytest.mark.parametrize("accept", ["application/json", "text/plain"])
def test_an_invalid_offset_is_a_json_400_with_its_code(api, build, offset, accept):
    services.build_log_append(build_id=build.id, text="hello\n")
    response = api.get(logs_url(build, offset), HTTP_ACCEPT=accept)
    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
    assert response.json()["code"] == "invalid_log_offset"


def test_someone_elses_build_is_not_found_but_staff_may_read_it(other_api, staff_api, build):
    services.build_log_append(build_id=build.id, text="private\n")
    for response in (other_api.get(logs_url(build)), other_api.get(logs_url(build), HTTP_ACCEPT="text/plain")):
        assert response.status_code == 404 and response.json()["code"] == "not_found"
        assert b"private" not in response.content
    assert staff_api.get(logs_url(build)).content == b"private\n"


def test_an_unknown_build_is_not_found_and_anonymous_is_refused(api, client, build):
    assert api.get(f"/api/v1/builds/{uuid.uuid4()}/logs/").status_code == 404
    assert client.get(logs_url(build)).status_code == 401


def test_a_build_with_no_log_that_ended_is_complete_and_empty(api, build):
    Build.objects.filter(pk=build.id).update(status=BuildStatus.SUPERSEDED)
    response = api.get(logs_url(build))
    assert response.status_code == 200 and response.content == b""
    assert response["X-Troy-Log-Complete"] == "true" and response["X-Troy-Log-Next-Offset"] == "0"


def test_a_secret_set_on_the_pipeline_never_appears_in_the_answer(api, build):
    services.env_variable_set(pipeline_id=build.pipeline_id, name="GH_TOKEN", value=SECRET, secret=True, actor="a")
    services.build_log_append(build_id=build.id, text=f"token is {SECRET}\n")
    response = api.get(logs_url(build))
    assert SECRET.encode() not in response.content and response.content == b"token is ***\n"


def test_the_schema_documents_the_endpoint(client):
    import yaml

    schema = yaml.safe_load(client.get("/api/schema/").content)
    operation = schema["paths"]["/api/v1/builds/{id}/logs/"]["get"]
    ok = operation["responses"]["200"]
    assert "text/plain" in ok["content"]
    assert {"X-Troy-Log-Next-Offset", "X-Troy-Log-Complete"} <= set(ok["headers"])
    assert "offset" in {p["name"] for p in operation["parameters"]}
    assert "application/json" in operation["responses"]["400"]["content"]
