"""The admin as an operator uses it: pages render, buttons call the services (with the operator as
the actor) and show exactly what is allowed now; nothing writes a status behind the services' back."""

import pytest

from events.models import Event
from pipelines import services
from pipelines.choices import BuildKind, BuildStatus, BuildTrigger
from pipelines.choices import PipelineStatus as S
from pipelines.models import Build, Pipeline
from tests.factories import PipelineFactory, put_in_status
from tests.form_client import FormClient

pytestmark = pytest.mark.django_db


@pytest.fixture
def operator(staff_user):
    client = FormClient()  # forms without a file field post urlencoded, as browsers do
    client.force_login(staff_user)
    return client


def change_url(pipeline) -> str:
    return f"/admin/pipelines/pipeline/{pipeline.pk}/change/"


def form_data(response) -> dict:
    """What the browser would submit from the change page as rendered: the form's current values
    and the inline formsets' management data."""
    data = {}
    form = response.context["adminform"].form
    for name, _field in form.fields.items():
        value = form[name].value()
        if isinstance(value, bool):
            if value:
                data[name] = "on"
        elif value is not None:
            data[name] = value
    for inline in response.context["inline_admin_formsets"]:
        management = inline.formset.management_form
        for name in management.fields:
            data[f"{management.prefix}-{name}"] = management[name].value()
    return data


def press(operator, pipeline, button: str, **changes):
    page = operator.get(change_url(pipeline))
    assert page.status_code == 200
    data = {**form_data(page), **changes, "_fsm_transition_to": button}
    return operator.post(change_url(pipeline), data, follow=True)


def shown_messages(response) -> list[str]:
    return [str(m) for m in response.context["messages"]]


def buttons(response) -> list[str]:
    return [t.name for block in response.context["fsm_object_transitions"] for t in block.available_transitions]


# --- pages ---------------------------------------------------------------------------------------


def test_changelist_filters_and_search_render(operator, user):
    PipelineFactory(owner=user, name="alpha")
    PipelineFactory(owner=user, name="beta")
    response = operator.get("/admin/pipelines/pipeline/")
    assert response.status_code == 200
    assert b"alpha" in response.content and b"beta" in response.content
    response = operator.get("/admin/pipelines/pipeline/", {"q": "alp", "status__exact": "pre_provisioned"})
    assert response.status_code == 200
    assert b"alpha" in response.content and b"beta" not in response.content


def test_change_page_shows_builds_events_and_the_error(operator, user):
    pipeline = PipelineFactory(owner=user, name="shown")
    services.pipeline_request_provisioning(pipeline_id=pipeline.id, actor="alice")
    services.pipeline_start_provisioning(pipeline_id=pipeline.id)
    services.pipeline_fail_provisioning(pipeline_id=pipeline.id, error="AccessDenied: no certificate")
    response = operator.get(change_url(pipeline))
    assert response.status_code == 200
    html = response.content.decode()
    assert "AccessDenied: no certificate" in html  # last_error and the event message
    assert "fail_provisioning" in html and "system:worker" in html  # the event log
    assert buttons(response) == ["request_provisioning", "schedule_deletion"]
    assert 'name="_fsm_transition_to"' in html and 'value="request_provisioning"' in html
    assert 'value="queue_deployment"' not in html
    form = response.context["adminform"].form
    assert "status" not in form.fields and "distribution_id" not in form.fields and "name" not in form.fields


def test_add_page_and_creating_through_the_admin(operator, staff_user, user):
    assert operator.get("/admin/pipelines/pipeline/add/").status_code == 200
    response = operator.post(
        "/admin/pipelines/pipeline/add/",
        {
            "name": "made-here",
            "owner": user.pk,
            "repository": "octo-org/made",
            "branch": "main",
            "auto_deploy": "on",
            "build_install": "npm ci",
            "build_command": "npm run build",
            "build_test": "",
            "build_output_dir": "./dist/",
            "builds-TOTAL_FORMS": "0",
            "builds-INITIAL_FORMS": "0",
            "builds-MIN_NUM_FORMS": "0",
            "builds-MAX_NUM_FORMS": "0",
        },
        follow=True,
    )
    assert response.status_code == 200
    pipeline = Pipeline.objects.get(name="made-here")
    assert pipeline.owner == user and pipeline.status == S.PRE_PROVISIONED
    assert pipeline.build_output_dir == "dist"  # normalised by the service
    assert response.redirect_chain[-1][0] == "/admin/pipelines/pipeline/"


def test_add_refuses_invalid_names(operator, user):
    response = operator.post(
        "/admin/pipelines/pipeline/add/",
        {
            "name": "Bad.Name",
            "owner": user.pk,
            "branch": "main",
            "build_output_dir": "dist",
            "builds-TOTAL_FORMS": "0",
            "builds-INITIAL_FORMS": "0",
        },
    )
    assert response.status_code == 200  # the form again, with its error
    assert "name" in response.context["adminform"].form.errors
    assert not Pipeline.objects.exists()


def test_saving_settings_goes_through_the_service_and_keeps_the_status(operator, user):
    pipeline = put_in_status(PipelineFactory(owner=user, branch="main"), S.DEPLOYED)
    page = operator.get(change_url(pipeline))
    response = operator.post(change_url(pipeline), {**form_data(page), "branch": "develop"}, follow=True)
    assert response.status_code == 200
    pipeline.refresh_from_db()
    assert pipeline.branch == "develop" and pipeline.status == S.DEPLOYED
    assert not Event.objects.exists()


def test_build_and_event_admin_pages_render_read_only(operator, user):
    pipeline = put_in_status(PipelineFactory(owner=user), S.READY_FOR_DEPLOYMENT)
    build = services.build_request(
        pipeline_id=pipeline.id, kind=BuildKind.AUTOMATED, trigger=BuildTrigger.MANUAL, actor="alice", ref="main"
    )
    event = Event.objects.get()
    for url in (
        "/admin/pipelines/build/",
        f"/admin/pipelines/build/{build.pk}/change/",
        "/admin/pipelines/build/?status__exact=queued&kind__exact=automated",
        f"/admin/pipelines/build/?q={pipeline.name}",
        "/admin/events/event/",
        f"/admin/events/event/{event.pk}/change/",
        "/admin/events/event/?to_status__exact=queued&transition=queue_deployment",
        f"/admin/events/event/?q={pipeline.name}",
        f"/admin/events/event/?pipeline_id={pipeline.pk}",
    ):
        response = operator.get(url)
        assert response.status_code == 200, url
    assert operator.get("/admin/pipelines/build/add/").status_code == 403
    assert operator.get("/admin/events/event/add/").status_code == 403
    assert operator.post(f"/admin/events/event/{event.pk}/delete/", {"post": "yes"}).status_code == 403
    assert Event.objects.filter(pk=event.pk).exists()
    assert operator.post(f"/admin/pipelines/pipeline/{pipeline.pk}/delete/", {"post": "yes"}).status_code == 403
    assert Pipeline.objects.filter(pk=pipeline.pk).exists()


def test_only_staff_reach_the_admin(client, user):
    client.force_login(user)
    response = client.get("/admin/pipelines/pipeline/")
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


# --- buttons -------------------------------------------------------------------------------------


def test_provision_button_moves_the_status_through_the_service(
    operator, user, broker, django_capture_on_commit_callbacks
):
    pipeline = PipelineFactory(owner=user)
    with django_capture_on_commit_callbacks(execute=True):
        response = press(operator, pipeline, "request_provisioning")
    assert response.status_code == 200
    pipeline.refresh_from_db()
    assert pipeline.status == S.PROVISION_REQUEST
    event = Event.objects.get()
    assert (event.transition, event.actor) == ("request_provisioning", "operator")
    assert len(broker.queues["troy"].queue) == 1  # the provisioning job
    assert any("Provisioning requested" in m for m in shown_messages(response))
    assert buttons(response) == ["schedule_deletion"]  # the page after the click


def test_delete_button_schedules_deletion(operator, user):
    pipeline = put_in_status(PipelineFactory(owner=user), S.DEPLOYED)
    press(operator, pipeline, "schedule_deletion")
    pipeline.refresh_from_db()
    assert pipeline.status == S.SCHEDULED_FOR_DELETION
    assert Event.objects.get().actor == "operator"


def test_deploy_button_queues_a_manual_build_of_the_branch(operator, user):
    pipeline = put_in_status(PipelineFactory(owner=user, branch="main"), S.READY_FOR_DEPLOYMENT)
    response = press(operator, pipeline, "queue_deployment")
    build = Build.objects.get()
    assert (build.kind, build.trigger, build.ref, build.status) == ("automated", "manual", "main", "queued")
    assert build.requested_by.username == "operator"
    pipeline.refresh_from_db()
    assert pipeline.status == S.QUEUED
    assert Event.objects.get().actor == "operator"
    assert any("Build #1 of main queued" in m for m in shown_messages(response))


def test_deploy_button_saves_an_edited_branch_first(operator, user):
    pipeline = put_in_status(PipelineFactory(owner=user, branch="main"), S.DEPLOYED)
    press(operator, pipeline, "queue_deployment", branch="release")
    assert Build.objects.get().ref == "release"


def test_deploy_button_without_repository_shows_the_error(operator, user):
    pipeline = put_in_status(PipelineFactory(owner=user, repository=""), S.READY_FOR_DEPLOYMENT)
    response = press(operator, pipeline, "queue_deployment")
    assert any("no repository" in m for m in shown_messages(response))
    pipeline.refresh_from_db()
    assert pipeline.status == S.READY_FOR_DEPLOYMENT and not Build.objects.exists()


@pytest.mark.parametrize(
    "status, expected",
    [
        (S.PRE_PROVISIONED, ["request_provisioning", "schedule_deletion"]),
        (S.PROVISIONING, []),
        (S.READY_FOR_DEPLOYMENT, ["queue_deployment", "schedule_deletion"]),
        (S.QUEUED, ["queue_deployment", "schedule_deletion"]),
        (S.DEPLOYING, ["queue_deployment"]),
        (S.FAILED_TO_DELETE, ["schedule_deletion"]),
        (S.DELETING, []),
    ],
)
def test_buttons_are_exactly_what_is_allowed_now(operator, user, status, expected):
    pipeline = put_in_status(PipelineFactory(owner=user), status)
    assert buttons(operator.get(change_url(pipeline))) == expected


def test_an_illegal_button_shows_an_error_and_changes_nothing(operator, user):
    pipeline = put_in_status(PipelineFactory(owner=user), S.PROVISIONING)
    response = press(operator, pipeline, "request_provisioning")
    assert response.status_code == 200
    assert any("Cannot request provisioning" in m for m in shown_messages(response))
    pipeline.refresh_from_db()
    assert pipeline.status == S.PROVISIONING and not Event.objects.exists()


@pytest.mark.parametrize("name", ["start_provisioning", "finish_deletion", "delete", "bogus"])
def test_worker_transitions_and_other_names_are_refused(operator, user, name):
    pipeline = put_in_status(PipelineFactory(owner=user), S.PROVISION_REQUEST)
    response = press(operator, pipeline, name)
    assert response.status_code == 200
    assert any("not something an operator can do" in m for m in shown_messages(response))
    pipeline.refresh_from_db()
    assert pipeline.status == S.PROVISION_REQUEST and not Event.objects.exists()


# --- builds admin action -------------------------------------------------------------------------


def test_cancel_action_cancels_queued_builds_and_reports_the_rest(operator, user):
    pipeline = put_in_status(PipelineFactory(owner=user), S.READY_FOR_DEPLOYMENT)
    queued = services.build_request(
        pipeline_id=pipeline.id,
        kind=BuildKind.RELEASE,
        trigger=BuildTrigger.CLI,
        actor="alice",
        artifact_key="releases/a.zip",
    )
    services.deployment_start(pipeline_id=pipeline.id)  # release build running: not cancellable
    waiting = services.build_request(
        pipeline_id=pipeline.id, kind=BuildKind.AUTOMATED, trigger=BuildTrigger.MANUAL, actor="alice", ref="main"
    )
    response = operator.post(
        "/admin/pipelines/build/",
        {
            "action": "cancel_builds",
            "_selected_action": [str(queued.pk), str(waiting.pk)],
        },
        follow=True,
    )
    assert response.status_code == 200
    queued.refresh_from_db()
    waiting.refresh_from_db()
    assert waiting.status == BuildStatus.CANCELLED and waiting.error == "Cancelled by operator."
    assert queued.status == BuildStatus.RUNNING
    text = " ".join(shown_messages(response))
    assert "cancellation requested" in text and "only queued builds" in text


def test_change_page_lists_the_latest_builds_inline(operator, user):
    pipeline = put_in_status(PipelineFactory(owner=user), S.READY_FOR_DEPLOYMENT)
    other = put_in_status(PipelineFactory(owner=user), S.READY_FOR_DEPLOYMENT)
    for _ in range(22):
        services.build_request(
            pipeline_id=pipeline.id, kind=BuildKind.AUTOMATED, trigger=BuildTrigger.MANUAL, actor="alice", ref="main"
        )
    services.build_request(
        pipeline_id=other.id, kind=BuildKind.AUTOMATED, trigger=BuildTrigger.MANUAL, actor="alice", ref="main"
    )
    response = operator.get(change_url(pipeline))
    inline = next(i for i in response.context["inline_admin_formsets"] if i.formset.prefix == "builds")
    numbers = [form.instance.number for form in inline.formset.forms]
    assert numbers == list(range(22, 2, -1))
    assert all(form.instance.pipeline_id == pipeline.id for form in inline.formset.forms)
    # and the button still works with the inline on the page (its management form is submitted)
    press(operator, pipeline, "schedule_deletion")
    pipeline.refresh_from_db()
    assert pipeline.status == S.SCHEDULED_FOR_DELETION
    assert Build.objects.filter(pipeline=pipeline, status=BuildStatus.CANCELLED).count() == 22
