"""Monorepo pushes: a push to the production branch that changes none of the watch paths starts no
build and leaves a ``push_skipped`` event; changed files come from the payload, or from GitHub's
compare API (the fake) when the payload is truncated. Pull request previews compare base...head."""

from __future__ import annotations

from django.test import Client
import pytest

from deployment_service.integrations.github import GithubError
from events.models import Event
from hooks.github_push_paths import payload_changed_files
from hooks.github_tasks import handle_github_delivery
from hooks.models import GithubDelivery
from pipelines.choices import PipelineStatus as S
from pipelines.models import Build
from tests.factories import PipelineFactory, put_in_status
from tests.fakes.github_server import FakeGithub
from tests.hooks.github_helpers import INSTALLATION, SECRET, SHA, deliver, push_payload
from tests.hooks.test_github_previews import HEAD, pr_payload

pytestmark = pytest.mark.django_db

BEFORE = push_payload()["before"]
REPO = "octo-org/site"


@pytest.fixture(autouse=True)
def secret(settings):
    settings.GITHUB_WEBHOOK_SECRET = SECRET


@pytest.fixture
def github(settings, github_app_key):
    private, public = github_app_key
    fake = FakeGithub(app_id="4242", public_key_pem=public)
    fake.installations[REPO] = INSTALLATION
    with fake:
        settings.GITHUB_API_URL = fake.api_url
        settings.GITHUB_APP_ID = "4242"
        settings.GITHUB_APP_PRIVATE_KEY = private
        yield fake


@pytest.fixture
def web():
    return put_in_status(
        PipelineFactory(name="web", repository=REPO, branch="main", watch_paths=["apps/web", "packages/**"]),
        S.DEPLOYED,
    )


def commit(*, added=(), modified=(), removed=()) -> dict:
    return {"id": SHA, "added": list(added), "modified": list(modified), "removed": list(removed)}


def push(payload: dict) -> GithubDelivery:
    response = deliver(Client(), payload)
    assert response.status_code == 202, response.content
    delivery = GithubDelivery.objects.get(delivery_id=response.json()["delivery"])
    handle_github_delivery(delivery.pk)
    delivery.refresh_from_db()
    return delivery


def test_a_push_outside_the_watch_paths_builds_nothing_and_says_why(web):
    delivery = push(push_payload(commits=[commit(modified=["apps/api/main.py"]), commit(added=["README.md"])]))
    assert not Build.objects.filter(pipeline=web).exists()
    web.refresh_from_db()
    assert web.status == S.DEPLOYED  # unchanged
    event = Event.objects.get(pipeline_id=web.id, transition="push_skipped")
    assert event.from_status == event.to_status == S.DEPLOYED
    assert event.actor == "github:octo"
    assert SHA[:12] in event.message and "README.md" in event.message and "apps/web" in event.message
    assert "web: skipped" in delivery.result


def test_a_push_inside_the_watch_paths_builds(web):
    push(push_payload(commits=[commit(modified=["README.md"]), commit(removed=["packages/ui/button.tsx"])]))
    assert Build.objects.filter(pipeline=web, commit_sha=SHA).count() == 1
    assert not Event.objects.filter(transition="push_skipped").exists()


def test_a_pipeline_without_watch_paths_builds_on_any_push(web):
    other = put_in_status(PipelineFactory(name="docs", owner=web.owner, repository=REPO, branch="main"), S.DEPLOYED)
    push(push_payload(commits=[commit(modified=["README.md"])]))
    assert Build.objects.filter(pipeline=other).count() == 1
    assert Build.objects.filter(pipeline=web).count() == 0


def test_a_truncated_payload_asks_the_compare_api(web, github):
    github.add_comparison(
        REPO,
        BEFORE,
        SHA,
        ["docs/a.md", {"filename": "apps/web/new.js", "status": "renamed", "previous_filename": "apps/old.js"}],
    )
    push(push_payload(commits=[commit(modified=["docs/a.md"])] * 20))
    assert [r.path for r in github.on("api", "GET", "/compare/")] == [f"/repos/octo-org/site/compare/{BEFORE}...{SHA}"]
    assert Build.objects.filter(pipeline=web).count() == 1  # the 21st file was in the watched app


def test_a_payload_without_commits_asks_the_compare_api_and_may_skip(web, github):
    github.add_comparison(REPO, BEFORE, SHA, ["docs/a.md"])
    push(push_payload())  # the helper's payload lists no commits
    assert Build.objects.filter(pipeline=web).count() == 0
    assert "docs/a.md" in Event.objects.get(transition="push_skipped").message


def test_when_github_cannot_compare_the_push_builds(web, github):
    push(push_payload())  # the fake knows no such comparison: 404
    assert Build.objects.filter(pipeline=web).count() == 1


def test_a_github_outage_is_retried_not_guessed(web, github):
    github.add_comparison(REPO, BEFORE, SHA, ["docs/a.md"])
    github.fail_next("/compare/", times=4, status=502)  # past the client's own 3 retries
    response = deliver(Client(), push_payload())
    delivery = GithubDelivery.objects.get(delivery_id=response.json()["delivery"])
    with pytest.raises(GithubError):
        handle_github_delivery(delivery.pk)
    delivery.refresh_from_db()
    assert delivery.processed_at is None  # the retry handles it
    handle_github_delivery(delivery.pk)
    assert Event.objects.filter(transition="push_skipped").count() == 1


def test_a_new_branch_has_nothing_to_compare_and_builds(web, github):
    push(push_payload(before="0" * 40, created=True))
    assert Build.objects.filter(pipeline=web).count() == 1
    assert not github.on("api", "GET", "/compare/")


def test_no_github_call_when_no_pipeline_watches(github):
    put_in_status(PipelineFactory(name="plain", repository=REPO, branch="main"), S.DEPLOYED)
    push(push_payload())
    assert not github.on("api", "GET", "/compare/")


@pytest.mark.parametrize(
    ("payload", "files"),
    [
        ({"commits": [commit(added=["a"], modified=["b"], removed=["c"]), commit(modified=["a"])]}, ["a", "b", "c"]),
        ({}, None),
        ({"commits": []}, None),
        ({"commits": [commit(added=["a"])] * 20}, None),
        ({"commits": [{"id": SHA, "added": ["a"]}]}, None),  # lists missing
        ({"commits": ["nope"]}, None),
        ({"commits": [commit(added=[5])]}, None),
    ],
)
def test_payload_changed_files(payload, files):
    assert payload_changed_files(payload) == files


# --- pull request previews: what the pull request changes (base...head) -------------------------


def pull_request(action: str = "opened") -> GithubDelivery:
    response = deliver(Client(), pr_payload(action), event="pull_request")
    assert response.status_code == 202, response.content
    delivery = GithubDelivery.objects.get(delivery_id=response.json()["delivery"])
    handle_github_delivery(delivery.pk)
    delivery.refresh_from_db()
    return delivery


@pytest.fixture
def web_previews(web):
    type(web).objects.filter(pk=web.pk).update(pull_request_previews=True)
    return web


@pytest.mark.parametrize(
    ("files", "builds"),
    [(["docs/readme.md"], 0), (["docs/readme.md", "apps/web/index.html"], 1)],
)
def test_a_pull_request_changing_none_of_the_watch_paths_builds_no_preview(web_previews, github, files, builds):
    github.add_comparison(REPO, SHA, HEAD, files)  # base.sha...head.sha
    delivery = pull_request("synchronize")
    assert [r.path for r in github.on("api", "GET", "/compare/")] == [f"/repos/{REPO}/compare/{SHA}...{HEAD}"]
    assert Build.objects.filter(pipeline=web_previews, preview_label="pr-7").count() == builds
    if not builds:
        assert "pr-7 skipped" in delivery.result
        event = Event.objects.get(pipeline_id=web_previews.id, transition="push_skipped")
        assert "pull request #7" in event.message


def test_a_pull_request_whose_changes_github_cannot_give_builds(web_previews, github):
    github.fail_next("/compare/", times=1, status=404)
    pull_request()
    assert Build.objects.filter(preview_label="pr-7").count() == 1


def test_a_closed_pull_request_asks_github_nothing(web_previews, github):
    pull_request("closed")
    assert not github.on("api", "GET", "/compare/")
