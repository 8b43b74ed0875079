"""Preview deliveries through the real hook, handled as the worker would: pushes to preview
branches (watch paths too), deleted branches, and pull_request events (forks wait)."""

from __future__ import annotations

import copy

from django.test import Client
import pytest

from hooks.github_tasks import handle_github_delivery
from hooks.models import GithubDelivery
from pipelines.choices import BuildStatus, BuildTrigger, PreviewSource
from pipelines.choices import PipelineStatus as S
from pipelines.models import Build, Pipeline, Preview
from tests.factories import PipelineFactory, put_in_status
from tests.hooks.github_helpers import INSTALLATION, SECRET, SHA, deliver, push_payload

pytestmark = pytest.mark.django_db

ZERO = "0" * 40
HEAD = "a" * 40

PULL_REQUEST = {
    "action": "opened",
    "number": 7,
    "pull_request": {
        "number": 7,
        "state": "open",
        "merged": False,
        "head": {"ref": "topic", "sha": HEAD, "repo": {"full_name": "octo-org/site"}},
        "base": {"ref": "main", "sha": SHA, "repo": {"full_name": "octo-org/site"}},
        "user": {"login": "octo"},
    },
    "repository": {"full_name": "octo-org/site"},
    "installation": {"id": INSTALLATION},
    "sender": {"login": "octo"},
}


def pr_payload(action: str = "opened", *, number: int = 7, head_repo: str | None = "octo-org/site", sha=HEAD, **pr):
    payload = copy.deepcopy(PULL_REQUEST)
    payload["action"], payload["number"] = action, number
    payload["pull_request"]["number"] = number
    payload["pull_request"]["head"]["sha"] = sha
    payload["pull_request"]["head"]["repo"] = {"full_name": head_repo} if head_repo else None
    payload["pull_request"].update(pr)
    return payload


@pytest.fixture(autouse=True)
def secret(settings):
    settings.GITHUB_WEBHOOK_SECRET = SECRET


@pytest.fixture
def site():
    return put_in_status(
        PipelineFactory(
            name="site",
            repository="octo-org/site",
            branch="main",
            preview_branches=["feature/*"],
            pull_request_previews=True,
        ),
        S.DEPLOYED,
    )


def handle(payload: dict, event: str = "push") -> GithubDelivery:
    response = deliver(Client(), payload, event=event)
    assert response.status_code == 202, response.content
    delivery = GithubDelivery.objects.get(delivery_id=response.json()["delivery"])
    handle_github_delivery(delivery.pk)
    delivery.refresh_from_db()
    return delivery


# --- pushes --------------------------------------------------------------------------------------


def test_a_push_to_a_preview_branch_queues_a_preview_build_and_production_stays(site):
    delivery = handle(push_payload(ref="refs/heads/feature/login"))

    [build] = Build.objects.filter(pipeline=site)
    assert (build.preview_label, build.ref, build.commit_sha, build.trigger) == (
        "feature-login",
        "feature/login",
        SHA,
        BuildTrigger.PUSH,
    )
    assert Pipeline.objects.get(pk=site.pk).status == S.DEPLOYED
    assert "preview feature-login" in delivery.result


@pytest.mark.parametrize(
    ("ref", "previews"),
    [
        ("refs/heads/feature/a", 1),
        ("refs/heads/main", 0),  # the production branch: a production build, never a preview
        ("refs/heads/fix/a", 0),
        ("refs/tags/feature/a", 0),
    ],
)
def test_only_matching_branches_other_than_production_get_previews(site, ref, previews):
    handle(push_payload(ref=ref))
    assert Build.objects.filter(pipeline=site).exclude(preview_label="").count() == previews


def test_watch_paths_apply_to_preview_pushes(site):
    Pipeline.objects.filter(pk=site.pk).update(watch_paths=["apps/web"])
    commits = [{"added": [], "removed": [], "modified": ["docs/readme.md"]}]
    delivery = handle(push_payload(ref="refs/heads/feature/a", commits=commits))
    assert not Build.objects.exists()
    assert "preview of feature/a skipped" in delivery.result

    commits = [{"added": ["apps/web/index.html"], "removed": [], "modified": []}]
    handle(push_payload(ref="refs/heads/feature/a", commits=commits, after="b" * 40))
    assert Build.objects.filter(preview_label="feature-a").count() == 1


def test_deleting_a_preview_branch_closes_its_preview(site):
    handle(push_payload(ref="refs/heads/feature/a"))
    delivery = handle(push_payload(ref="refs/heads/feature/a", deleted=True, after=ZERO))
    preview = Preview.objects.get(pipeline=site, label="feature-a")
    assert preview.closed_at is not None
    assert "closed" in delivery.result
    assert Build.objects.get(pipeline=site).status == BuildStatus.CANCELLED  # it was still queued


def test_deleting_the_production_branch_still_changes_nothing(site):
    delivery = handle(push_payload(deleted=True, after=ZERO))
    assert "was deleted" in delivery.result and not Build.objects.exists()


# --- pull requests -------------------------------------------------------------------------------


def test_an_opened_pull_request_builds_pr_n(site):
    delivery = handle(pr_payload("opened"), event="pull_request")
    [build] = Build.objects.filter(pipeline=site)
    assert (build.preview_label, build.commit_sha, build.trigger, build.from_fork, build.awaiting_approval) == (
        "pr-7",
        HEAD,
        BuildTrigger.PULL_REQUEST,
        False,
        False,
    )
    preview = Preview.objects.get(pk=build.preview_id)
    assert (preview.source, preview.pull_request, preview.branch) == (PreviewSource.PULL_REQUEST, 7, "topic")
    assert "build #1 queued for preview pr-7" in delivery.result
    assert Pipeline.objects.get(pk=site.pk).status == S.DEPLOYED


@pytest.mark.parametrize(
    ("actions", "statuses", "closed"),
    [
        (["opened", "synchronize"], [BuildStatus.SUPERSEDED, BuildStatus.QUEUED], False),
        (["opened", "closed"], [BuildStatus.CANCELLED], True),
        (["opened", "closed", "reopened"], [BuildStatus.CANCELLED, BuildStatus.QUEUED], False),
        (["opened", "edited", "labeled"], [BuildStatus.QUEUED], False),
    ],
)
def test_pull_request_actions(site, actions, statuses, closed):
    for n, action in enumerate(actions):
        handle(pr_payload(action, sha=f"{n + 1:x}" * 40), event="pull_request")
    assert list(Build.objects.order_by("number").values_list("status", flat=True)) == statuses
    assert (Preview.objects.get(label="pr-7").closed_at is not None) is closed


@pytest.mark.parametrize("head_repo", ["someone/site", None], ids=["fork", "deleted-fork"])
def test_a_forks_pull_request_waits_for_approval(site, head_repo):
    delivery = handle(pr_payload(head_repo=head_repo), event="pull_request")
    [build] = Build.objects.all()
    assert build.from_fork and build.awaiting_approval and build.status == BuildStatus.QUEUED
    assert "waiting for approval" in delivery.result


def test_without_pull_request_previews_nothing_is_built(site):
    Pipeline.objects.filter(pk=site.pk).update(pull_request_previews=False)
    delivery = handle(pr_payload(), event="pull_request")
    assert not Build.objects.exists() and delivery.result.startswith("no pipeline builds previews")


def test_a_pull_request_of_another_installation_builds_nothing(site):
    payload = pr_payload()
    payload["installation"]["id"] = INSTALLATION + 1
    handle(payload, event="pull_request")
    assert not Build.objects.exists()


@pytest.mark.parametrize(
    "change",
    [
        lambda p: p.pop("number") and p["pull_request"].pop("number"),
        lambda p: p["pull_request"]["head"].update(sha="nope"),
        lambda p: p.pop("repository"),
        lambda p: p.update(action=3),
    ],
)
def test_a_malformed_pull_request_delivery_is_refused_and_not_stored(change):
    payload = pr_payload()
    change(payload)
    response = deliver(Client(), payload, event="pull_request")
    assert response.status_code == 400 and response.json()["code"] == "invalid_delivery"
    assert not GithubDelivery.objects.exists()


def test_a_reopen_keeps_the_preview_even_when_the_pipeline_cannot_build_now(site):
    handle(pr_payload("opened"), event="pull_request")
    handle(pr_payload("closed"), event="pull_request")
    Pipeline.objects.filter(pk=site.pk).update(status=S.PROVISIONING)
    delivery = handle(pr_payload("reopened"), event="pull_request")
    assert "cannot deploy" in delivery.result
    assert Preview.objects.get(label="pr-7").closed_at is None
