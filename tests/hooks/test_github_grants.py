"""Repository grants: only a user holding a GitHub App installation that covers a repository may
name it in a pipeline, have pushes build it and deploy it; the setup flow and the installation
webhooks decide who holds what."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from django.core import signing
from django.test import Client
import pytest

from hooks.github_tasks import handle_github_delivery
from hooks.models import GithubDelivery
from pipelines.choices import PipelineStatus as S
from pipelines.grants import install_state_for
from pipelines.models import Build, GithubInstallation, GithubInstallationRepository
from tests.factories import PipelineFactory, grant_repository, put_in_status
from tests.form_client import FormClient
from tests.hooks.github_helpers import (
    INSTALLATION,
    SECRET,
    deliver,
    installation_payload,
    installation_repositories_payload,
    push_payload,
)
from tests.pipelines.codebuild_support import sent

pytestmark = pytest.mark.django_db

A_REPO = "a-org/private-site"
SETUP = "/hooks/github/setup/"


@pytest.fixture(autouse=True)
def secret(settings):
    settings.GITHUB_WEBHOOK_SECRET = SECRET
    settings.TROY_GITHUB_APP_SLUG = "troy-test"


def handled(payload: dict, event: str = "push") -> GithubDelivery:
    response = deliver(Client(), payload, event=event)
    assert response.status_code == 202, response.content
    delivery = GithubDelivery.objects.get(delivery_id=response.json()["delivery"])
    handle_github_delivery(delivery.pk)
    delivery.refresh_from_db()
    return delivery


def a_push() -> dict:
    return push_payload(repository={"full_name": A_REPO, "private": True}, installation={"id": INSTALLATION})


def repositories_of(installation_id: int) -> list[str]:
    return list(
        GithubInstallationRepository.objects.filter(installation__installation_id=installation_id).values_list(
            "full_name", flat=True
        )
    )


# --- the attack from issue 8 ---------------------------------------------------------------------


def test_a_user_cannot_name_a_repository_someone_elses_installation_covers(user, other_user, other_api):
    grant_repository(user, A_REPO, installation_id=INSTALLATION)  # A's installation

    response = other_api.post("/api/v1/pipelines/", {"name": "steal", "repository": A_REPO}, format="json")

    assert response.status_code == 400
    assert response.json()["code"] == "repository_not_granted"
    assert not other_user.pipelines.exists()


def test_a_patch_to_an_ungranted_repository_is_refused_and_changes_nothing(other_user, other_api):
    pipeline = PipelineFactory(owner=other_user, repository="mallory/own-site")
    response = other_api.patch(f"/api/v1/pipelines/{pipeline.id}/", {"repository": A_REPO}, format="json")
    assert response.status_code == 400 and response.json()["code"] == "repository_not_granted"
    pipeline.refresh_from_db()
    assert pipeline.repository == "mallory/own-site"


def test_an_empty_repository_needs_no_grant(other_api):
    response = other_api.post("/api/v1/pipelines/", {"name": "release-only", "repository": ""}, format="json")
    assert response.status_code == 201, response.json()


def test_staff_follow_the_same_rule(staff_api):
    response = staff_api.post("/api/v1/pipelines/", {"name": "ops", "repository": A_REPO}, format="json")
    assert response.status_code == 400 and response.json()["code"] == "repository_not_granted"


def test_as_push_does_not_queue_a_build_on_bs_pipeline_naming_the_same_repository(user, other_user, broker):
    mine = put_in_status(PipelineFactory(owner=user, name="a-site", repository=A_REPO, grant=INSTALLATION), S.DEPLOYED)
    # B's pipeline got the repository before grants existed (a row written directly).
    theirs = put_in_status(
        PipelineFactory(owner=other_user, name="b-steal", repository=A_REPO, grant=False), S.DEPLOYED
    )

    delivery = handled(a_push())

    assert list(Build.objects.values_list("pipeline__name", flat=True)) == ["a-site"]
    assert "a-site: build #1 queued" in delivery.result and "b-steal" not in delivery.result
    theirs.refresh_from_db()
    assert theirs.github_installation_id is None  # and it did not learn A's installation either
    assert mine.builds.count() == 1


def test_bs_deploy_cannot_reach_as_repository(user, other_user, other_api):
    grant_repository(user, A_REPO, installation_id=INSTALLATION)
    theirs = put_in_status(
        PipelineFactory(owner=other_user, repository=A_REPO, grant=False, github_installation_id=INSTALLATION),
        S.DEPLOYED,
    )

    response = other_api.post(f"/api/v1/pipelines/{theirs.id}/deploy/", {}, format="json")

    assert response.status_code == 409
    assert response.json()["code"] == "installation_missing"
    assert not Build.objects.exists()


def test_a_push_without_an_installation_builds_nothing(user):
    put_in_status(PipelineFactory(owner=user, repository=A_REPO), S.DEPLOYED)
    payload = a_push()
    del payload["installation"]
    assert handled(payload).result.startswith("ignored:")
    assert not Build.objects.exists()


# --- the install link and the setup callback -----------------------------------------------------


def test_the_install_link_carries_a_signed_state_for_the_user(api, user):
    url = api.get("/api/v1/github/install/").json()["url"]
    assert url.startswith("https://github.com/apps/troy-test/installations/new?state=")
    state = parse_qs(urlsplit(url).query)["state"][0]
    assert signing.TimestampSigner(salt="troy.github.install-state").unsign_object(state)["u"] == user.pk
    assert api.get("/api/v1/github/install/").json()["url"] != url  # a nonce: no two alike


def test_the_install_link_needs_a_login_and_the_apps_slug(client, api, settings):
    assert client.get("/api/v1/github/install/").status_code == 401
    settings.TROY_GITHUB_APP_SLUG = ""
    response = api.get("/api/v1/github/install/")
    assert response.status_code == 503 and response.json()["code"] == "github_not_configured"


def test_setup_with_a_good_state_links_the_installation_and_fetches_its_repositories_in_a_worker(
    client, user, broker, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = client.get(
            SETUP,
            {"installation_id": str(INSTALLATION), "setup_action": "install", "state": install_state_for(user.pk)},
        )
    assert response.status_code == 200, response.json()
    assert response.json()["status"] == "linked"
    assert GithubInstallation.objects.get(installation_id=INSTALLATION).user == user
    assert sent(broker, "refresh_github_installation") == [(INSTALLATION,)]


@pytest.mark.parametrize(
    "state",
    [None, "", "forged", signing.TimestampSigner(salt="another-purpose").sign_object({"u": 1, "n": "x"})],
    ids=["missing", "empty", "forged", "signed-for-another-purpose"],  # stable ids: xdist workers must agree
)
def test_setup_with_a_bad_state_is_refused_and_links_nothing(client, user, state):
    query = {"installation_id": str(INSTALLATION), "setup_action": "install"}
    if state is not None:
        query["state"] = state
    response = client.get(SETUP, query)
    assert response.status_code == 400 and response.json()["code"] == "install_state_invalid"
    assert not GithubInstallation.objects.exists()


def test_setup_with_an_expired_state_is_refused(client, user, settings):
    state = install_state_for(user.pk)
    settings.TROY_GITHUB_INSTALL_STATE_MAX_AGE = -1  # every state is older than that
    response = client.get(SETUP, {"installation_id": str(INSTALLATION), "state": state})
    assert response.status_code == 400 and response.json()["code"] == "install_state_invalid"
    assert "expired" in response.json()["detail"]
    assert not GithubInstallation.objects.exists()


def test_setup_with_another_users_state_is_refused(user, other_user):
    browser = Client()
    browser.force_login(other_user)
    response = browser.get(SETUP, {"installation_id": str(INSTALLATION), "state": install_state_for(user.pk)})
    assert response.status_code == 400 and response.json()["code"] == "install_state_invalid"
    assert not GithubInstallation.objects.exists()


def test_setup_never_moves_an_installation_linked_to_someone_else(client, user, other_user):
    grant_repository(user, A_REPO, installation_id=INSTALLATION)
    response = client.get(SETUP, {"installation_id": str(INSTALLATION), "state": install_state_for(other_user.pk)})
    assert response.status_code == 409 and response.json()["code"] == "installation_taken"
    assert GithubInstallation.objects.get(installation_id=INSTALLATION).user == user


@pytest.mark.parametrize("installation_id", ["", "abc", "-3", "0", "²", "9" * 30])
def test_setup_with_a_malformed_installation_id_is_refused(client, user, installation_id):
    response = client.get(SETUP, {"installation_id": installation_id, "state": install_state_for(user.pk)})
    assert response.status_code == 400 and response.json()["code"] == "invalid_installation"
    assert not GithubInstallation.objects.exists()


# --- installation webhooks -----------------------------------------------------------------------


def test_installation_created_then_repositories_added_and_removed_keep_the_list(user, broker):
    handled(installation_payload("created", repositories=["octo-org/site", "Octo-Org/Docs"]), "installation")
    assert repositories_of(INSTALLATION) == ["octo-org/docs", "octo-org/site"]
    assert GithubInstallation.objects.get(installation_id=INSTALLATION).account == "octo-org"

    handled(
        installation_repositories_payload("added", added=["octo-org/blog"], removed=[]), "installation_repositories"
    )
    delivery = handled(
        installation_repositories_payload("removed", removed=["octo-org/docs"]), "installation_repositories"
    )
    assert repositories_of(INSTALLATION) == ["octo-org/blog", "octo-org/site"]
    assert "-1 repositories, 2 now" in delivery.result


def test_a_repository_removed_from_the_installation_can_no_longer_be_named(user, api):
    grant_repository(user, A_REPO, installation_id=INSTALLATION)
    handled(installation_repositories_payload("removed", removed=[A_REPO]), "installation_repositories")
    response = api.post("/api/v1/pipelines/", {"name": "gone", "repository": A_REPO}, format="json")
    assert response.status_code == 400 and response.json()["code"] == "repository_not_granted"


@pytest.mark.parametrize("action", ["deleted", "suspend"])
def test_an_installation_removed_on_github_stops_its_pipelines_builds(user, api, broker, action):
    pipeline = put_in_status(PipelineFactory(owner=user, repository=A_REPO, grant=INSTALLATION), S.DEPLOYED)

    assert handled(installation_payload(action), "installation").result.startswith(f"installation {INSTALLATION}")

    assert not handled(a_push()).result.endswith("queued")
    assert not Build.objects.exists()
    response = api.post(f"/api/v1/pipelines/{pipeline.id}/deploy/", {}, format="json")
    assert response.status_code == 409 and response.json()["code"] == "installation_missing"
    assert "uninstalled or suspended" in response.json()["detail"]


def test_unsuspend_lets_builds_start_again(user, broker):
    put_in_status(PipelineFactory(owner=user, repository=A_REPO, grant=INSTALLATION), S.DEPLOYED)
    handled(installation_payload("suspend"), "installation")
    handled(installation_payload("unsuspend"), "installation")
    assert "build #1 queued" in handled(a_push()).result


def test_an_installation_delivery_without_an_installation_is_stored_as_ignored():
    delivery = handled({"action": "created"}, "installation")
    assert delivery.result.startswith("ignored: The delivery lacks a valid installation.id")
    assert not GithubInstallation.objects.exists()


# --- the worker refresh and the admin ------------------------------------------------------------


@pytest.fixture
def admin_client(admin_user):
    client = FormClient()  # forms without a file field post urlencoded, as browsers do
    client.force_login(admin_user)
    return client


def test_an_operator_links_an_installation_to_a_user_in_the_admin(
    admin_client, user, broker, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            "/admin/pipelines/githubinstallation/add/",
            {
                "installation_id": str(INSTALLATION),
                "user": str(user.pk),
                "repositories-TOTAL_FORMS": "0",
                "repositories-INITIAL_FORMS": "0",
            },
        )
    assert response.status_code == 302, response.content.decode()[:2000]
    assert GithubInstallation.objects.get(installation_id=INSTALLATION).user == user
    assert sent(broker, "refresh_github_installation") == [(INSTALLATION,)]


def test_an_operator_may_move_an_installation_to_another_user(admin_client, user, other_user):
    installation = grant_repository(user, A_REPO, installation_id=INSTALLATION)
    response = admin_client.post(
        f"/admin/pipelines/githubinstallation/{installation.pk}/change/",
        {"user": str(other_user.pk), "repositories-TOTAL_FORMS": "0", "repositories-INITIAL_FORMS": "0"},
    )
    assert response.status_code == 302
    assert GithubInstallation.objects.get(installation_id=INSTALLATION).user == other_user
    assert repositories_of(INSTALLATION) == [A_REPO]  # the list is GitHub's, not the operator's
