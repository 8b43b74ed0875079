"""Who may call what: no token → 401 everywhere; someone else's pipeline → 404 everywhere (exactly as
if it did not exist, and nothing changes); staff reach everything."""

import pytest
from rest_framework.test import APIClient

from events.models import Event
from pipelines import services
from pipelines.choices import BuildKind, BuildTrigger
from pipelines.choices import PipelineStatus as S
from pipelines.models import Build, Pipeline
from tests.factories import PipelineFactory, put_in_status

pytestmark = pytest.mark.django_db


@pytest.fixture
def alices(user):
    """Alice's pipeline (deployed) with a live release build and a queued automated build."""
    pipeline = put_in_status(PipelineFactory(owner=user, name="alices"), S.READY_FOR_DEPLOYMENT)
    live = services.build_request(
        pipeline_id=pipeline.id,
        kind=BuildKind.RELEASE,
        trigger=BuildTrigger.CLI,
        actor="alice",
        artifact_key="releases/a.zip",
    )
    services.deployment_start(pipeline_id=pipeline.id)
    services.deployment_finish(build_id=live.id)
    queued = services.build_request(
        pipeline_id=pipeline.id, kind=BuildKind.AUTOMATED, trigger=BuildTrigger.MANUAL, actor="alice", ref="main"
    )
    return Pipeline.objects.get(pk=pipeline.pk), live, queued


def endpoints(pipeline, live, queued):
    p = f"/api/v1/pipelines/{pipeline.id}/"
    return [
        ("get", p, None),
        ("patch", p, {"branch": "stolen"}),
        ("delete", p, None),
        ("post", p + "provision/", None),
        ("post", p + "deploy/", {"ref": "main"}),
        ("get", p + "builds/", None),
        ("get", p + "events/", None),
        ("get", f"/api/v1/builds/{live.id}/", None),
        ("post", f"/api/v1/builds/{queued.id}/cancel/", None),
        ("post", f"/api/v1/builds/{live.id}/redeploy/", None),
    ]


COLLECTIONS = [
    ("get", "/api/v1/pipelines/"),
    ("post", "/api/v1/pipelines/"),
    ("get", "/api/v1/builds/"),
    ("get", "/api/v1/events/"),
]


def snapshot():
    return (
        list(Pipeline.objects.values_list("id", "status", "branch", "name")),
        list(Build.objects.order_by("id").values_list("id", "status", "cancel_requested")),
        Event.objects.count(),
    )


def call(client, method, url, data=None):
    return getattr(client, method)(url, data, format="json")


def test_without_a_token_every_endpoint_is_401(alices):
    client = APIClient()
    before = snapshot()
    calls = [(m, u, d) for m, u, d in endpoints(*alices)] + [(m, u, None) for m, u in COLLECTIONS]
    calls.append(("get", f"/api/v1/events/{Event.objects.first().id}/", None))
    for method, url, data in calls:
        response = call(client, method, url, data)
        assert response.status_code == 401, (method, url, response.status_code)
        assert response.json()["code"] == "not_authenticated", (method, url)
        assert response["WWW-Authenticate"] == "Token", (method, url)
    assert snapshot() == before


def test_a_wrong_token_is_401(alices):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token not-a-real-token")
    response = client.get("/api/v1/pipelines/")
    assert response.status_code == 401 and response.json()["code"] == "authentication_failed"


@pytest.mark.parametrize("index", range(10))
def test_someone_elses_pipeline_is_404_on_every_endpoint(other_api, alices, index):
    method, url, data = endpoints(*alices)[index]
    before = snapshot()
    response = call(other_api, method, url, data)
    assert response.status_code == 404, (method, url, response.json())
    assert response.json()["code"] == "not_found"
    assert snapshot() == before


def test_someone_elses_things_are_not_listed(other_api, alices):
    for url in ("/api/v1/pipelines/", "/api/v1/builds/", "/api/v1/events/"):
        assert other_api.get(url).json()["count"] == 0, url
    pipeline = alices[0]
    assert other_api.get("/api/v1/events/", {"pipeline": str(pipeline.id)}).json()["count"] == 0
    assert other_api.get(f"/api/v1/events/{Event.objects.first().id}/").status_code == 404


def test_an_unknown_or_malformed_id_is_404(api):
    for url in (
        "/api/v1/pipelines/00000000-0000-0000-0000-000000000000/",
        "/api/v1/pipelines/nope/",
        "/api/v1/builds/nope/",
        "/api/v1/pipelines/00000000-0000-0000-0000-000000000000/events/",
        "/api/v1/pipelines/00000000-0000-0000-0000-000000000000/builds/",
    ):
        response = api.get(url)
        assert response.status_code == 404, url
        assert response.json()["code"] == "not_found"


@pytest.mark.parametrize("index", range(10))
def test_staff_reach_every_endpoint(staff_api, alices, index):
    method, url, data = endpoints(*alices)[index]
    response = call(staff_api, method, url, data)
    # reached and judged on the pipeline's state (provision of a queued pipeline is a 409), never hidden
    expected = 409 if url.endswith("/provision/") else (200 if method in {"get", "patch"} else 202)
    assert response.status_code == expected, (method, url, response.json())


def test_session_auth_works_for_the_browsable_api(client, user, alices):
    client.force_login(user)
    response = client.get("/api/v1/pipelines/", HTTP_ACCEPT="application/json")
    assert response.status_code == 200 and response.json()["count"] == 1


def test_filtering_builds_by_someone_elses_pipeline_answers_like_an_unknown_id(alices, other_api):
    pipeline, _, _ = alices
    theirs = other_api.get(f"/api/v1/builds/?pipeline={pipeline.id}")
    unknown = other_api.get("/api/v1/builds/?pipeline=00000000-0000-4000-8000-000000000000")
    assert theirs.status_code == unknown.status_code == 200
    assert theirs.json() == unknown.json() == {"count": 0, "next": None, "previous": None, "results": []}
    assert other_api.get("/api/v1/builds/?pipeline=not-a-uuid").status_code == 400


def test_filtering_builds_by_your_own_pipeline_lists_its_builds(alices, api):
    pipeline, live, queued = alices
    answer = api.get(f"/api/v1/builds/?pipeline={pipeline.id}").json()
    assert {b["id"] for b in answer["results"]} == {str(live.id), str(queued.id)}
