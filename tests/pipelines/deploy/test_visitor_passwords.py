"""Visitor passwords end to end (docs/edge.md, "Visitor passwords"): troy.json basic_auth goes
live and rolls back with its build, a preview's password set through the API protects the preview
and its builds' permalinks, both are accepted, and the clear password is found nowhere Troy
writes: the manifest, the pointer values (what the KeyValueStore holds), the database rows, the
events and the API's answers. Served through the local edge, which runs the viewer function."""

from __future__ import annotations

import base64
import json

from django.conf import settings
from django.core import serializers
import pytest

from deployment_service import aws
from edge.local import LocalEdge
from edge.rules import MAX_BASIC_AUTH_USERS
from events.models import Event
from pipelines import services
from pipelines.choices import BuildStatus, PointerKind
from pipelines.flows.deploy import deploy_build_run
from pipelines.models import Build, EdgePointer, Pipeline, Preview, permalink_host, pointer_value
from pipelines.selectors import edge_pointer_value
from releases import services as release_services
from releases.storage import release_store_run
from tests.pipelines.deploy.support import PAGE
from tests.releases.helpers import release_and_deploy, run_queued, upload, zip_bytes

pytestmark = pytest.mark.django_db

BUILD_PASSWORD = "correct-horse-7"
PREVIEW_PASSWORD = "preview-only-9"
LOCKED = {
    "index.html": PAGE.format("locked"),
    "troy.json": json.dumps({"basic_auth": {"username": "alice", "password": BUILD_PASSWORD}}),
}
OPEN = {"index.html": PAGE.format("open")}


def basic(username: str, password: str) -> dict[str, str]:
    return {"authorization": "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()}


def get(host: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    edge = LocalEdge(edge_pointer_value, aws.client("s3"), settings.TROY_LIVE_BUCKET)
    status, answer_headers, body = edge.handle("GET", host, "/", "", headers or {})
    return status, {name.lower(): value for name, value in answer_headers}, body


def release_to_preview(pipeline: Pipeline, label: str, files: dict[str, str]) -> Build:
    release, build = release_services.release_upload(
        pipeline=pipeline, upload=upload(zip_bytes(files)), preview=label, actor="test"
    )
    release_store_run(release_id=release.id)
    started = services.preview_deployment_start(preview_id=build.preview.id)
    deploy_build_run(build_id=started.id)
    return Build.objects.get(pk=started.pk)


def assert_nowhere(secret: str, *also: object) -> None:
    """The clear password is in no row Troy wrote, no S3 object of the live bucket, no answer."""
    encoded = json.dumps(secret)[1:-1]
    rows = serializers.serialize(
        "json",
        [*Build.objects.all(), *EdgePointer.objects.all(), *Preview.objects.all(), *Event.objects.all()],
    )
    assert secret not in rows and encoded not in rows
    assert all(secret not in pointer.value for pointer in EdgePointer.objects.all())
    s3 = aws.client("s3")
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=settings.TROY_LIVE_BUCKET):
        for item in page.get("Contents", []):
            body = s3.get_object(Bucket=settings.TROY_LIVE_BUCKET, Key=item["Key"])["Body"].read()
            assert secret.encode() not in body, item["Key"]
    for thing in also:
        assert secret not in json.dumps(thing)


def test_a_builds_basic_auth_goes_live_and_rolls_back_with_it(pipeline):
    opened = release_and_deploy(pipeline, OPEN)
    locked = release_and_deploy(pipeline, LOCKED)
    assert locked.status == BuildStatus.SUCCEEDED, locked.error
    assert len(locked.visitor_credentials) == 1 and locked.visitor_credentials[0].count(":") == 1

    status, headers, body = get(pipeline.domain)
    assert status == 401 and b"Password required" in body
    assert headers["www-authenticate"] == f'Basic realm="{pipeline.domain}", charset="UTF-8"'
    assert headers["cache-control"] == "no-store"
    assert get(pipeline.domain, basic("alice", "wrong"))[0] == 401
    status, _headers, body = get(pipeline.domain, basic("alice", BUILD_PASSWORD))
    assert status == 200 and b"locked" in body
    # The build's permalink asks too; the open build's does not.
    assert get(permalink_host(number=locked.number, name=pipeline.name))[0] == 401
    assert get(permalink_host(number=opened.number, name=pipeline.name))[0] == 200

    # Rolling back to the build without basic_auth removes the prompt: it belongs to the build.
    services.build_redeploy(build_id=opened.id, actor="test")
    rolled = run_queued(Pipeline.objects.get(pk=pipeline.pk))
    assert rolled.content_build_id == opened.id
    status, _headers, body = get(pipeline.domain)
    assert status == 200 and b"open" in body
    # And forward again (pointer only) brings it back.
    services.build_redeploy(build_id=locked.id, actor="test")
    run_queued(Pipeline.objects.get(pk=pipeline.pk))
    assert get(pipeline.domain)[0] == 401
    assert_nowhere(BUILD_PASSWORD)


def test_two_builds_hash_the_same_password_with_their_own_salt(pipeline):
    first = release_and_deploy(pipeline, LOCKED)
    second = release_and_deploy(pipeline, {**LOCKED, "index.html": PAGE.format("again")})
    assert first.visitor_credentials != second.visitor_credentials
    assert first.visitor_credentials[0].split(":")[0] != second.visitor_credentials[0].split(":")[0]


def test_a_preview_password_protects_the_preview_and_its_permalinks(pipeline, api):
    release_and_deploy(pipeline, OPEN)
    preview_build = release_to_preview(pipeline, "feature-x", LOCKED)
    host = Preview.objects.get(pipeline=pipeline, label="feature-x").host
    permalink = permalink_host(number=preview_build.number, name=pipeline.name)
    url = f"/api/v1/pipelines/{pipeline.id}/previews/feature-x/password/"

    answer = api.put(url, {"password": PREVIEW_PASSWORD}, format="json")
    assert answer.status_code == 200, answer.json()
    assert answer.json()["password_protected"] is True and "password" not in answer.json()
    listed = api.get(f"/api/v1/pipelines/{pipeline.id}/previews/").json()
    assert listed["results"][0]["password_protected"] is True

    # Any username with the preview's password, and the build's own user: either is accepted.
    assert get(host)[0] == 401
    assert get(host, basic("anyone", PREVIEW_PASSWORD))[0] == 200
    assert get(host, basic("alice", BUILD_PASSWORD))[0] == 200
    assert get(host, basic("alice", "nope"))[0] == 401
    # The permalink of the build deployed there asks for the same.
    assert get(permalink)[0] == 401
    assert get(permalink, basic("x", PREVIEW_PASSWORD))[0] == 200
    # Production is untouched.
    assert get(pipeline.domain)[0] == 200
    assert Event.objects.filter(pipeline_id=pipeline.id, transition="preview_password").count() == 1
    assert_nowhere(PREVIEW_PASSWORD, answer.json(), listed)
    assert_nowhere(BUILD_PASSWORD, answer.json(), listed)

    assert api.delete(url).json()["password_protected"] is False
    assert get(host, basic("anyone", PREVIEW_PASSWORD))[0] == 401  # only the build's user now
    assert get(host, basic("alice", BUILD_PASSWORD))[0] == 200


def test_a_permalink_of_a_build_deployed_to_a_protected_preview_is_born_protected(pipeline, api):
    release_to_preview(pipeline, "secret", OPEN)
    url = f"/api/v1/pipelines/{pipeline.id}/previews/secret/password/"
    assert api.put(url, {"username": "pat", "password": PREVIEW_PASSWORD}, format="json").status_code == 200
    second = release_to_preview(pipeline, "secret", {"index.html": PAGE.format("two")})

    permalink = permalink_host(number=second.number, name=pipeline.name)
    assert get(permalink)[0] == 401
    assert get(permalink, basic("someone", PREVIEW_PASSWORD))[0] == 401  # the username counts
    assert get(permalink, basic("pat", PREVIEW_PASSWORD))[0] == 200
    pointer = EdgePointer.objects.get(host=permalink)
    assert pointer.kind == PointerKind.PERMALINK and pointer.credentials
    assert_nowhere(PREVIEW_PASSWORD)


@pytest.mark.parametrize(
    ("body", "field_words"),
    [
        ({}, "required"),
        ({"password": ""}, "blank"),
        ({"username": "a:b", "password": "x"}, "must not contain ':'"),
    ],
)
def test_a_password_that_cannot_be_used_is_400_and_changes_nothing(pipeline, api, body, field_words):
    release_to_preview(pipeline, "feature-x", OPEN)
    answer = api.put(f"/api/v1/pipelines/{pipeline.id}/previews/feature-x/password/", body, format="json")
    assert answer.status_code == 400, answer.json()
    assert field_words in json.dumps(answer.json())
    assert not Preview.objects.get(label="feature-x").password_protected


def test_an_unknown_preview_is_404(pipeline, api):
    answer = api.put(f"/api/v1/pipelines/{pipeline.id}/previews/nope/password/", {"password": "x"}, format="json")
    assert answer.status_code == 404 and answer.json()["code"] == "not_found"


def test_the_largest_pointer_value_stays_far_below_the_stores_1_kb(pipeline):
    from edge.rules import credential_make

    credentials = [credential_make(username=f"user{i}", password="p") for i in range(MAX_BASIC_AUTH_USERS)]
    credentials.append(credential_make(username="", password="preview"))
    value = pointer_value(pipeline.id, pipeline.id, " ".join(credentials))
    assert len(value.encode()) < 700
    assert EdgePointer._meta.get_field("published").max_length >= len(value)
    assert EdgePointer._meta.get_field("credentials").max_length >= len(" ".join(credentials))
    # Old values keep their form.
    assert pointer_value(pipeline.id, None) == f"{pipeline.id}/"
    # A viewer function from before passwords read "pipeline" and "build" only: a protected
    # value names neither, so that function answers 404 for it (fails closed) until the new one
    # is published.
    assert not {"pipeline", "build"} & set(json.loads(value))
