"""Request bodies bounded before they are read, and JSON that cannot crash what reads it
(deployment_service/limits.py): the API, the admin and both hooks, as a client sees them."""

from __future__ import annotations

import io
import json

from django.test import Client
import pytest

from hooks.models import GithubDelivery, SnsDelivery
from hooks.sns import NOTIFICATION, sns_delivery_handle
from pipelines.models import Pipeline
from tests.factories import PipelineFactory
from tests.hooks.github_helpers import SECRET
from tests.hooks.github_helpers import deliver as github_deliver

pytestmark = pytest.mark.django_db

DEEP = "[" * 950 + "]" * 950  # 1.9 KB that CPython's decoder and its walkers recurse into
NUL_BODY = '{"name": "a\\u0000b", "repository": "octo-org/site"}'
SURROGATE_BODY = '{"name": "a\\ud800b", "repository": "octo-org/site"}'


@pytest.fixture
def pipeline(user):
    return PipelineFactory(owner=user)


@pytest.fixture
def secret(settings):
    settings.GITHUB_WEBHOOK_SECRET = SECRET


def _api_calls(pipeline):
    return [
        ("post", "/api/v1/pipelines/"),
        ("patch", f"/api/v1/pipelines/{pipeline.id}/"),
        ("post", f"/api/v1/pipelines/{pipeline.id}/deploy/"),
    ]


def _send(api, method, url, body: bytes | str, content_type="application/json", **extra):
    return getattr(api, method)(url, data=body, content_type=content_type, **extra)


def _chunked(body: str) -> dict:
    """What gunicorn hands Django for ``Transfer-Encoding: chunked``: no Content-Length and an input
    that reads until the body ends (the test client's own input refuses reads past its length)."""
    return {"CONTENT_LENGTH": "", "HTTP_TRANSFER_ENCODING": "chunked", "wsgi.input": io.BytesIO(body.encode())}


def test_api_bodies_over_the_limit_are_413_json_before_anything_changes(api, pipeline, settings):
    settings.TROY_API_MAX_BODY_BYTES = 1024
    body = json.dumps({"name": "big", "build_command": "x" * 2000})
    for method, url in _api_calls(pipeline):
        response = _send(api, method, url, body)
        assert response.status_code == 413, (url, response.content)
        assert response.json() == {
            "code": "body_too_large",
            "detail": "The request body is larger than the limit of 1024 bytes.",
            "limit": 1024,
        }
    assert Pipeline.objects.count() == 1 and Pipeline.objects.get().build_command == pipeline.build_command


def test_the_default_api_limit_is_one_mebibyte(api, pipeline):
    response = _send(api, "patch", f"/api/v1/pipelines/{pipeline.id}/", b" " * (1024 * 1024 + 1))
    assert response.status_code == 413 and response.json()["limit"] == 1024 * 1024


def test_chunked_bodies_without_content_length_are_counted_and_refused_past_the_limit(api, pipeline, settings):
    settings.TROY_API_MAX_BODY_BYTES = 1024
    body = json.dumps({"build_command": "x" * 4000})
    for method, url in _api_calls(pipeline):
        response = _send(api, method, url, body, **_chunked(body))
        assert response.status_code == 413, (url, response.content)
        assert response.json()["code"] == "body_too_large"


def test_chunked_bodies_within_the_limit_are_read_whole(api, pipeline):
    body = json.dumps({"build": {"build": "make site"}})
    url = f"/api/v1/pipelines/{pipeline.id}/"
    response = _send(api, "patch", url, body, **_chunked(body))
    assert response.status_code == 200, response.content
    pipeline.refresh_from_db()
    assert pipeline.build_command == "make site"


def test_multipart_is_415_where_no_file_is_expected(api, pipeline):
    for method, url in _api_calls(pipeline):
        response = _send(api, method, url, b"--x\r\n\r\n--x--\r\n", content_type="multipart/form-data; boundary=x")
        assert response.status_code == 415, url
        assert response.json()["code"] == "unsupported_media_type"


def test_admin_login_refuses_multipart_before_reading_it():
    client = Client(enforce_csrf_checks=True)
    client.get("/admin/login/")
    response = client.post(
        "/admin/login/",
        data=b"--x\r\nContent-Disposition: form-data; name=username\r\n\r\nalice\r\n--x--\r\n",
        content_type="multipart/form-data; boundary=x",
    )
    assert response.status_code == 415


def test_admin_login_bodies_over_the_limit_are_413(settings):
    settings.TROY_API_MAX_BODY_BYTES = 1024
    response = Client().post(
        "/admin/login/", data="username=" + "a" * 2000, content_type="application/x-www-form-urlencoded"
    )
    assert response.status_code == 413 and response.json()["code"] == "body_too_large"


@pytest.mark.parametrize(
    ("body", "code"),
    [(DEEP, "json_too_deep"), (NUL_BODY, "invalid_json"), (SURROGATE_BODY, "invalid_json"), ("{", "invalid_json")],
)
def test_hostile_json_is_400_with_a_code_on_create_patch_and_deploy(api, pipeline, body, code):
    for method, url in _api_calls(pipeline):
        response = _send(api, method, url, body)
        assert response.status_code == 400, (url, response.content)
        assert response.json()["code"] == code
    assert Pipeline.objects.count() == 1


def test_nul_and_surrogates_in_keys_and_nested_values_are_refused(api, pipeline):
    for body in ('{"a\\u0000": 1}', '{"a": [{"b": ["\\udfff"]}]}'):
        response = _send(api, "patch", f"/api/v1/pipelines/{pipeline.id}/", body)
        assert response.status_code == 400 and response.json()["code"] == "invalid_json"


@pytest.mark.parametrize("body", [DEEP, '{"Type": "Notification\\u0000"}', '{"Type": "\\ud800"}'])
def test_sns_refuses_hostile_json_with_400_and_stores_nothing(client, body):
    response = client.post("/hooks/sns/", data=body, content_type="text/plain")
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_sns_message"
    assert response.json()["reason"] in {"json_too_deep", "invalid_json"}
    assert not SnsDelivery.objects.exists()


def test_sns_bodies_over_the_limit_are_413_before_they_are_read(client, settings):
    settings.TROY_SNS_MAX_BODY_BYTES = 1000
    response = client.post("/hooks/sns/", data=b"{" + b" " * 2000 + b"}", content_type="text/plain")
    assert response.status_code == 413 and response.json() == {
        "code": "body_too_large",
        "detail": "The request body is larger than the limit of 1000 bytes.",
        "limit": 1000,
    }


def test_a_stored_sns_notification_whose_message_is_deep_json_is_ignored_not_retried():
    delivery = SnsDelivery.objects.create(
        message_id="m-1",
        message_type=NOTIFICATION,
        topic_arn="arn:aws:sns:us-east-1:123456789012:t",
        body={"Message": DEEP},
    )
    result = sns_delivery_handle(delivery_pk=delivery.pk)
    assert result == "ignored: the Message is not a JSON event"
    delivery.refresh_from_db()
    assert delivery.processed_at is not None


@pytest.mark.parametrize("body", [DEEP, '{"zen": "a\\u0000"}', '{"zen": "\\ud800"}'])
def test_signed_github_deliveries_with_hostile_json_are_400_and_not_stored(client, secret, body):
    response = github_deliver(client, body.encode(), event="ping")
    assert response.status_code == 400, response.content
    assert response.json()["code"] == "invalid_delivery"
    assert not GithubDelivery.objects.exists()


def test_github_bodies_over_the_limit_are_413(client, secret, settings):
    settings.TROY_GITHUB_MAX_BODY_BYTES = 1000
    response = github_deliver(client, json.dumps({"zen": "x" * 2000}).encode(), event="ping")
    assert response.status_code == 413 and response.json()["limit"] == 1000


@pytest.mark.postgres
def test_a_signed_github_delivery_with_nul_never_reaches_jsonb(client, secret):
    """PostgreSQL's jsonb refuses \\u0000: the delivery must be refused before the insert, not 500."""
    body = json.dumps({"zen": "a\u0000b", "hook_id": 1}).encode()
    response = github_deliver(client, body, event="issues")
    assert response.status_code == 400 and response.json()["reason"] == "invalid_json"
    assert not GithubDelivery.objects.exists()


def test_django_refusals_under_the_api_answer_json(api):
    response = api.get("/api/v1/pipelines/?" + "&".join(f"f{i}=1" for i in range(1100)))
    assert response.status_code == 400
    assert response.json()["code"] == "bad_request"
