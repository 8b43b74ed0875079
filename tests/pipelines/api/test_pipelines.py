"""The pipelines endpoints as a client sees them: status codes, bodies, what changed."""

from django.core.exceptions import ValidationError
import pytest

from events.models import Event
from pipelines import services
from pipelines.choices import PipelineStatus as S
from pipelines.models import COMMAND_MAX_LENGTH, Pipeline
from tests.factories import PipelineFactory, grant_repository, put_in_status

pytestmark = pytest.mark.django_db

URL = "/api/v1/pipelines/"


def detail(pipeline) -> str:
    return f"{URL}{pipeline.id}/"


# --- create --------------------------------------------------------------------------------------


def test_create_answers_the_pipeline_as_documented(api, user, settings):
    settings.TROY_BASE_DOMAIN = "sites.example.com"
    grant_repository(user, "octo-org/docs")
    response = api.post(
        URL,
        {
            "name": "docs",
            "repository": "octo-org/docs",
            "branch": "release/1.x",
            "build": {"install": "npm ci", "build": "npm run build", "test": "npm test", "output_dir": "site/out"},
            "auto_deploy": False,
        },
        format="json",
    )

    assert response.status_code == 201, response.json()
    body = response.json()
    assert set(body) == {
        "id",
        "name",
        "domain",
        "site_url",
        "local_url",
        "status",
        "status_display",
        "repository",
        "branch",
        "build",
        "auto_deploy",
        "base_dir",
        "watch_paths",
        "preview_branches",
        "pull_request_previews",
        "distribution_id",
        "distribution_domain",
        "live_build",
        "last_error",
        "created_at",
        "updated_at",
        "allowed_transitions",
    }
    assert body["domain"] == "docs.sites.example.com"
    assert body["site_url"] == "https://docs.sites.example.com/"
    assert body["status"] == "pre_provisioned" and body["status_display"] == "Pre Provisioned"
    assert body["build"] == {
        "install": "npm ci",
        "build": "npm run build",
        "test": "npm test",
        "output_dir": "site/out",
    }
    assert body["auto_deploy"] is False and body["live_build"] is None
    assert body["allowed_transitions"] == ["request_provisioning", "schedule_deletion"]
    pipeline = Pipeline.objects.get(pk=body["id"])
    assert pipeline.owner == user and pipeline.branch == "release/1.x"
    assert not Event.objects.exists()  # created, not moved


def test_create_with_defaults_needs_only_a_name(api):
    response = api.post(URL, {"name": "bare"}, format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["repository"] == "" and body["branch"] == "main" and body["build"]["output_dir"] == "dist"


def test_create_with_provision_requests_it_writes_one_event_and_queues_the_work(
    api, user, broker, django_capture_on_commit_callbacks
):
    grant_repository(user, "octo-org/fast")
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(URL, {"name": "fast", "repository": "octo-org/fast", "provision": True}, format="json")

    assert response.status_code == 201, response.json()
    assert response.json()["status"] == "provision_request"
    events = list(Event.objects.all())
    assert [(e.transition, e.from_status, e.to_status, e.actor) for e in events] == [
        ("request_provisioning", "pre_provisioned", "provision_request", "alice")
    ]
    queued = [m for m in broker.queues["troy"].queue if m]
    assert len(queued) == 1


def test_status_in_the_body_is_ignored(api):
    response = api.post(URL, {"name": "sneaky", "status": "deployed"}, format="json")
    assert response.status_code == 201
    assert Pipeline.objects.get(name="sneaky").status == S.PRE_PROVISIONED


@pytest.mark.parametrize("name", ["Site", "-site", "site-", "a" * 64, "my.site", "", "under_score", "spa ce"])
def test_invalid_names_are_400_with_a_field_error(api, name):
    response = api.post(URL, {"name": name}, format="json")
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid" and "name" in body["errors"], body
    assert not Pipeline.objects.exists()


def test_a_63_character_name_is_fine(api):
    assert api.post(URL, {"name": "a" * 63}, format="json").status_code == 201


def test_missing_name_is_400(api):
    response = api.post(URL, {"repository": "octo-org/site"}, format="json")
    assert response.status_code == 400 and "name" in response.json()["errors"]


@pytest.mark.parametrize(
    "repository",
    [
        "noslash",
        "a/b/c",
        "owner/..",
        "-owner/repo",
        "owner/repo.git",
        "https://github.com/o/r",
        "own er/repo",
    ],
)
def test_invalid_repositories_are_400_with_a_field_error(api, repository):
    response = api.post(URL, {"name": "site", "repository": repository}, format="json")
    assert response.status_code == 400
    assert "repository" in response.json()["errors"], response.json()
    assert not Pipeline.objects.exists()


@pytest.mark.parametrize("output_dir", ["../up", "/abs", "a/../../b", "c:\\x"])
def test_unsafe_output_dirs_are_400(api, output_dir):
    response = api.post(URL, {"name": "site", "build": {"output_dir": output_dir}}, format="json")
    assert response.status_code == 400
    assert "output_dir" in response.json()["errors"]["build"], response.json()


@pytest.mark.parametrize("branch", ["bad..branch", "-lead", "trailing/", "sp ace", "x.lock"])
def test_invalid_branches_are_400(api, branch):
    response = api.post(URL, {"name": "site", "branch": branch}, format="json")
    assert response.status_code == 400 and "branch" in response.json()["errors"]


def test_duplicate_names_are_400_even_across_owners(api, other_user):
    PipelineFactory(name="taken", owner=other_user)
    response = api.post(URL, {"name": "taken"}, format="json")
    assert response.status_code == 400
    assert response.json()["code"] == "invalid" and "name" in response.json()["errors"]
    assert Pipeline.objects.filter(name="taken").count() == 1


# --- read and change -----------------------------------------------------------------------------


def test_detail_shows_the_live_build_and_error(api, user):
    from pipelines.choices import BuildKind, BuildTrigger

    pipeline = put_in_status(PipelineFactory(owner=user), S.READY_FOR_DEPLOYMENT)
    build = services.build_request(
        pipeline_id=pipeline.id,
        kind=BuildKind.RELEASE,
        trigger=BuildTrigger.CLI,
        actor="alice",
        artifact_key="releases/a.zip",
    )
    services.deployment_start(pipeline_id=pipeline.id)
    services.deployment_finish(build_id=build.id)

    body = api.get(detail(pipeline)).json()
    assert body["status"] == "deployed"
    assert body["live_build"] == {"id": str(build.id), "number": 1}
    assert body["allowed_transitions"] == ["queue_deployment", "schedule_deletion"]


def test_patch_changes_settings_and_leaves_the_rest(api, user):
    pipeline = put_in_status(PipelineFactory(owner=user, build_test=""), S.DEPLOYED)
    response = api.patch(detail(pipeline), {"branch": "develop", "build": {"test": "npm test"}}, format="json")

    assert response.status_code == 200, response.json()
    pipeline.refresh_from_db()
    assert (pipeline.branch, pipeline.build_test) == ("develop", "npm test")
    assert (pipeline.build_install, pipeline.build_command) == ("npm ci", "npm run build")
    assert pipeline.status == S.DEPLOYED


def test_patch_cannot_write_status(api, user):
    pipeline = PipelineFactory(owner=user)
    response = api.patch(detail(pipeline), {"status": "deployed", "auto_deploy": False}, format="json")
    assert response.status_code == 200
    pipeline.refresh_from_db()
    assert pipeline.status == S.PRE_PROVISIONED and pipeline.auto_deploy is False


def test_patch_renames_before_provisioning(api, user):
    pipeline = PipelineFactory(owner=user, name="old")
    response = api.patch(detail(pipeline), {"name": "new"}, format="json")
    assert response.status_code == 200 and response.json()["domain"].startswith("new.")


@pytest.mark.parametrize("status", [S.PROVISION_REQUEST, S.READY_FOR_DEPLOYMENT, S.DEPLOYED, S.FAILED_TO_PROVISION])
def test_patch_cannot_rename_once_provisioning_started(api, user, status):
    pipeline = put_in_status(PipelineFactory(owner=user, name="fixed"), status)
    response = api.patch(detail(pipeline), {"name": "renamed"}, format="json")
    assert response.status_code == 400
    assert response.json()["code"] == "name_locked"
    pipeline.refresh_from_db()
    assert pipeline.name == "fixed"
    # sending the same name along with other settings is fine
    assert api.patch(detail(pipeline), {"name": "fixed", "branch": "dev"}, format="json").status_code == 200


def test_patch_with_invalid_values_is_400_and_changes_nothing(api, user):
    pipeline = PipelineFactory(owner=user, repository="octo-org/site")
    response = api.patch(detail(pipeline), {"repository": "nope", "branch": "ok"}, format="json")
    assert response.status_code == 400 and "repository" in response.json()["errors"]
    pipeline.refresh_from_db()
    assert pipeline.repository == "octo-org/site"


def test_put_is_not_offered(api, user):
    pipeline = PipelineFactory(owner=user)
    response = api.put(detail(pipeline), {"name": "x"}, format="json")
    assert response.status_code == 405 and response.json()["code"] == "method_not_allowed"


# --- transitions ---------------------------------------------------------------------------------


def test_provision_answers_202_and_records_the_actor(api, user):
    pipeline = PipelineFactory(owner=user)
    response = api.post(f"{detail(pipeline)}provision/")
    assert response.status_code == 202
    assert response.json()["status"] == "provision_request"
    assert Event.objects.get().actor == "alice"


def test_provision_retries_after_a_failure(api, user):
    pipeline = put_in_status(PipelineFactory(owner=user), S.FAILED_TO_PROVISION, last_error="boom")
    response = api.post(f"{detail(pipeline)}provision/")
    assert response.status_code == 202
    assert response.json()["last_error"] == ""


@pytest.mark.parametrize(
    "status",
    [S.PROVISION_REQUEST, S.PROVISIONING, S.READY_FOR_DEPLOYMENT, S.DEPLOYED, S.SCHEDULED_FOR_DELETION, S.DELETING],
)
def test_illegal_provision_is_409_with_status_and_allowed(api, user, status):
    pipeline = put_in_status(PipelineFactory(owner=user), status)
    response = api.post(f"{detail(pipeline)}provision/")
    assert response.status_code == 409
    body = response.json()
    assert body["code"] == "invalid_transition"
    assert body["status"] == status
    assert body["allowed"] == services.allowed_actions(pipeline)
    assert "request_provisioning" not in body["allowed"]
    assert body["detail"]
    pipeline.refresh_from_db()
    assert pipeline.status == status and not Event.objects.exists()


def test_409_lists_exactly_what_is_allowed(api, user):
    pipeline = put_in_status(PipelineFactory(owner=user), S.DEPLOYED)
    body = api.post(f"{detail(pipeline)}provision/").json()
    assert body["allowed"] == ["queue_deployment", "schedule_deletion"]
    pipeline = put_in_status(pipeline, S.DELETING)
    assert api.post(f"{detail(pipeline)}provision/").json()["allowed"] == []


def test_delete_schedules_deletion_with_202(api, user):
    pipeline = put_in_status(PipelineFactory(owner=user), S.DEPLOYED)
    response = api.delete(detail(pipeline))
    assert response.status_code == 202
    assert response.json()["status"] == "scheduled_for_deletion"
    assert Pipeline.objects.filter(pk=pipeline.pk).exists()  # the worker removes the row later
    assert Event.objects.get().transition == "schedule_deletion"


@pytest.mark.parametrize("status", [S.SCHEDULED_FOR_DELETION, S.DELETING, S.PROVISIONING, S.DEPLOYING])
def test_illegal_delete_is_409(api, user, status):
    pipeline = put_in_status(PipelineFactory(owner=user), status)
    response = api.delete(detail(pipeline))
    assert response.status_code == 409
    assert response.json()["status"] == status and response.json()["code"] == "invalid_transition"
    assert not Event.objects.exists()


# --- list ----------------------------------------------------------------------------------------


@pytest.fixture
def mixed(user, other_user):
    return {
        "alpha": put_in_status(PipelineFactory(owner=user, name="alpha", repository="octo-org/alpha"), S.DEPLOYED),
        "beta": put_in_status(PipelineFactory(owner=user, name="beta", repository="acme/www"), S.FAILED_TO_DEPLOY),
        "gamma": PipelineFactory(owner=user, name="gamma", repository=""),
        "theirs": PipelineFactory(owner=other_user, name="theirs", repository="octo-org/alpha"),
    }


def names(response) -> list[str]:
    assert response.status_code == 200, response.json()
    return [p["name"] for p in response.json()["results"]]


def test_list_shows_only_own_pipelines_sorted_by_name(api, mixed):
    body = api.get(URL).json()
    assert body["count"] == 3
    assert [p["name"] for p in body["results"]] == ["alpha", "beta", "gamma"]


def test_list_filters_by_one_or_several_statuses(api, mixed):
    assert names(api.get(URL, {"status": "deployed"})) == ["alpha"]
    assert names(api.get(URL + "?status=deployed,pre_provisioned")) == ["alpha", "gamma"]
    assert names(api.get(URL + "?status=deployed&status=failed_to_deploy")) == ["alpha", "beta"]
    assert names(api.get(URL + "?status=queued")) == []


def test_list_rejects_an_unknown_status(api, mixed):
    response = api.get(URL + "?status=deployed,bogus")
    assert response.status_code == 400
    assert response.json()["code"] == "invalid" and "status" in response.json()["errors"]


def test_list_searches_name_and_repository(api, mixed):
    assert names(api.get(URL, {"search": "alp"})) == ["alpha"]
    assert names(api.get(URL, {"search": "acme"})) == ["beta"]
    assert names(api.get(URL, {"search": "octo-org"})) == ["alpha"]  # never someone else's


def test_list_is_paginated(api, user):
    for i in range(7):
        PipelineFactory(owner=user, name=f"p{i}")
    first = api.get(URL, {"page_size": 3}).json()
    assert first["count"] == 7 and len(first["results"]) == 3 and first["next"] and first["previous"] is None
    last = api.get(URL, {"page_size": 3, "page": 3}).json()
    assert [p["name"] for p in last["results"]] == ["p6"] and last["next"] is None
    assert api.get(URL, {"page_size": 3, "page": 4}).status_code == 404


def test_staff_see_every_pipeline_and_may_act_on_it(staff_api, mixed):
    assert names(staff_api.get(URL)) == ["alpha", "beta", "gamma", "theirs"]
    theirs = mixed["theirs"]
    assert staff_api.get(detail(theirs)).status_code == 200
    response = staff_api.post(f"{detail(theirs)}provision/")
    assert response.status_code == 202
    assert Event.objects.get().actor == "operator"


@pytest.mark.parametrize("field", ["install", "build", "test"])
def test_a_build_command_over_its_limit_is_refused_on_create_and_patch(api, field):
    too_long = "x" * (COMMAND_MAX_LENGTH + 1)
    created = api.post("/api/v1/pipelines/", {"name": "limits", "build": {field: too_long}}, format="json")
    assert created.status_code == 400
    assert created.json()["code"] == "invalid" and field in created.json()["errors"]["build"]
    assert not Pipeline.objects.filter(name="limits").exists()

    ok = api.post("/api/v1/pipelines/", {"name": "limits", "build": {field: "y" * COMMAND_MAX_LENGTH}}, format="json")
    assert ok.status_code == 201
    patched = api.patch(f"/api/v1/pipelines/{ok.json()['id']}/", {"build": {field: too_long}}, format="json")
    assert patched.status_code == 400 and field in patched.json()["errors"]["build"]
    assert api.get(f"/api/v1/pipelines/{ok.json()['id']}/").json()["build"][field] == "y" * COMMAND_MAX_LENGTH


@pytest.mark.parametrize(
    ("field", "value"),
    [("branch", "b" * 256), ("repository", "o/" + "r" * 139), ("name", "n" * 64)],
)
def test_other_free_text_fields_are_bounded(api, field, value):
    answer = api.post("/api/v1/pipelines/", {"name": "bounded", field: value}, format="json")
    assert answer.status_code == 400 and field in answer.json()["errors"]


@pytest.mark.parametrize("field", ["build_install", "build_command", "build_test"])
def test_the_model_field_enforces_the_command_limit_too(field):
    model_field = Pipeline._meta.get_field(field)
    model_field.clean("x" * COMMAND_MAX_LENGTH, None)
    with pytest.raises(ValidationError) as refused:
        model_field.clean("x" * (COMMAND_MAX_LENGTH + 1), None)
    assert [error.code for error in refused.value.error_list] == ["max_length"]
