"""Local git sources: file:///path repositories (only with TROY_LOCAL_SOURCES), validated when they
are set, and the head poller that turns a new commit into one build, as a push would."""

from __future__ import annotations

import threading

from django.core.checks import run_checks
from dramatiq import Message
import pytest

from events.models import Event
from operations.scheduler import run_local_source_poller
from pipelines import services
from pipelines.choices import BuildTrigger
from pipelines.choices import PipelineStatus as S
from pipelines.flows.local_sources import local_sources_poll
from pipelines.models import Build, Pipeline
from tests.factories import put_in_status
from tests.pipelines.local.support import make_repo

pytestmark = pytest.mark.django_db

URL = "/api/v1/pipelines/"


@pytest.fixture
def local_sources(settings):
    settings.TROY_LOCAL_SOURCES = True
    return settings


@pytest.fixture
def repo(tmp_path):
    return make_repo(tmp_path / "site")


def _create(api, repository: str, **fields):
    return api.post(URL, {"name": "hello", "repository": repository, **fields}, format="json")


# --- validation -----------------------------------------------------------------------------------


def test_a_local_source_is_refused_without_the_setting(api, repo, settings):
    settings.TROY_LOCAL_SOURCES = False
    answer = _create(api, repo.url)
    assert answer.status_code == 400, answer.json()
    assert answer.json()["error_codes"] == {"repository": ["local_sources_disabled"]}
    assert not Pipeline.objects.exists()


def test_a_local_source_is_created_with_its_head_recorded(api, repo, local_sources):
    answer = _create(api, repo.url, build={"build": "true", "output_dir": "site"})
    assert answer.status_code == 201, answer.json()
    pipeline = Pipeline.objects.get(name="hello")
    assert pipeline.repository == repo.url
    assert pipeline.source_head == repo.head()
    assert not Build.objects.exists()  # creating builds nothing: the next commit does


@pytest.mark.parametrize(
    ("where", "branch"),
    [
        ("missing", "main"),  # no such directory
        ("plain", "main"),  # a directory that is not a git repository
        ("repo", "no-such-branch"),
    ],
)
def test_a_local_source_must_be_a_git_repository_holding_the_branch(api, repo, tmp_path, local_sources, where, branch):
    (tmp_path / "plain").mkdir()
    path = {"missing": tmp_path / "missing", "plain": tmp_path / "plain", "repo": repo.path}[where]
    answer = _create(api, f"file://{path}", branch=branch)
    assert answer.status_code == 400, answer.json()
    assert answer.json()["error_codes"] == {"repository": ["invalid_local_source"]}
    assert not Pipeline.objects.exists()


def test_a_local_source_is_an_absolute_path(api, local_sources):
    answer = _create(api, "file://relative/site")
    assert answer.status_code == 400
    assert answer.json()["error_codes"] == {"repository": ["invalid_local_source"]}


def test_changing_the_branch_records_the_new_branch_head(user, repo, local_sources):
    repo.git("checkout", "-q", "-b", "next")
    next_head = repo.commit({"site/next.html": "next"})
    pipeline = services.pipeline_create(owner=user, name="hello", repository=repo.url, actor="alice")
    assert pipeline.source_head == repo.head("main")
    changed = services.pipeline_update(pipeline_id=pipeline.id, branch="next", actor="alice")
    assert changed.source_head == next_head


def test_the_system_check_warns_when_local_sources_are_on_without_debug(settings):
    settings.TROY_LOCAL_SOURCES, settings.DEBUG = True, False
    assert "pipelines.W020" in {m.id for m in run_checks()}
    settings.DEBUG = True
    assert "pipelines.W020" not in {m.id for m in run_checks()}
    settings.TROY_LOCAL_SOURCES, settings.DEBUG = False, False
    assert "pipelines.W020" not in {m.id for m in run_checks()}


# --- the head poller ------------------------------------------------------------------------------


@pytest.fixture
def pipeline(user, repo, local_sources):
    created = services.pipeline_create(
        owner=user, name="hello", repository=repo.url, build_command="true", actor="alice"
    )
    return put_in_status(created, S.READY_FOR_DEPLOYMENT)


def test_a_new_commit_starts_one_build_like_a_push(pipeline, repo, broker):
    head = repo.commit({"site/index.html": "<h1>v2</h1>"})
    [line] = local_sources_poll()
    assert "build #1 queued" in line
    build = Build.objects.get(pipeline=pipeline)
    assert (build.trigger, build.commit_sha, build.ref) == (BuildTrigger.PUSH, head, "main")
    assert Pipeline.objects.get(pk=pipeline.pk).status == S.QUEUED
    assert Event.objects.filter(pipeline_id=pipeline.id, actor="local:git", transition="queue_deployment").exists()


def test_the_same_head_starts_nothing(pipeline, repo, broker):
    assert local_sources_poll() == []
    repo.commit({"site/index.html": "<h1>v2</h1>"})
    local_sources_poll()
    assert local_sources_poll() == []
    assert Build.objects.filter(pipeline=pipeline).count() == 1


def test_a_head_already_handled_is_not_handled_again(pipeline, repo, broker):
    """Two polls that read the same old head race: the second finds it moved and starts nothing."""
    seen = pipeline.source_head
    head = repo.commit({"site/index.html": "<h1>v2</h1>"})
    first = services.local_push_record(pipeline_id=pipeline.id, seen_head=seen, head=head, changed_files=None)
    second = services.local_push_record(pipeline_id=pipeline.id, seen_head=seen, head=head, changed_files=None)
    assert "queued" in first
    assert second.startswith("ignored:")
    assert Build.objects.filter(pipeline=pipeline).count() == 1


def test_a_commit_outside_the_watch_paths_starts_no_build(pipeline, repo, broker):
    services.pipeline_update(pipeline_id=pipeline.id, watch_paths=["site/**"], actor="alice")
    repo.commit({"README.md": "docs only"})
    [line] = local_sources_poll()
    assert "skipped" in line
    assert not Build.objects.filter(pipeline=pipeline).exists()
    assert Event.objects.filter(pipeline_id=pipeline.id, transition=services.PUSH_SKIPPED).exists()
    repo.commit({"site/index.html": "<h1>v3</h1>"})
    local_sources_poll()
    assert Build.objects.filter(pipeline=pipeline).count() == 1


def test_auto_deploy_off_starts_no_build(pipeline, repo, broker):
    services.pipeline_update(pipeline_id=pipeline.id, auto_deploy=False, actor="alice")
    repo.commit({"site/index.html": "<h1>v2</h1>"})
    [line] = local_sources_poll()
    assert "auto_deploy is off" in line
    assert not Build.objects.exists()


def test_a_commit_made_while_provisioning_builds_once_provisioned(pipeline, repo, broker):
    put_in_status(pipeline, S.PROVISIONING)
    head = repo.commit({"site/index.html": "<h1>v2</h1>"})
    [line] = local_sources_poll()
    assert line.startswith("waiting:")
    assert not Build.objects.exists()
    put_in_status(pipeline, S.READY_FOR_DEPLOYMENT)
    local_sources_poll()
    assert Build.objects.get(pipeline=pipeline).commit_sha == head


def test_nothing_is_polled_without_the_setting(pipeline, repo, settings, broker):
    settings.TROY_LOCAL_SOURCES = False
    repo.commit({"site/index.html": "<h1>v2</h1>"})
    assert local_sources_poll() == []
    assert not Build.objects.exists()


def test_the_scheduler_sends_the_poll_only_with_the_setting(settings, broker, monkeypatch):
    settings.TROY_LOCAL_SOURCES = False
    assert run_local_source_poller(threading.Event()) == 0
    settings.TROY_LOCAL_SOURCES = True
    stop = threading.Event()
    monkeypatch.setattr(stop, "wait", lambda seconds: stop.set())  # one poll, then stop
    assert run_local_source_poller(stop) == 1
    assert [Message.decode(raw).actor_name for raw in broker.queues["troy"].queue] == ["poll_local_sources"]
