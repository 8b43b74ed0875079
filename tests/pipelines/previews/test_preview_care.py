"""The periodic care of previews: closed previews removed after the grace (a reopen within it
keeps them), stuck preview builds reaped, lost start messages sent again, and retention keeping
every build a preview serves."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone
import pytest

from pipelines import services, tasks
from pipelines.choices import BuildKind, BuildStatus, BuildTrigger
from pipelines.models import Build, EdgePointer, Pipeline, Preview
from tests.pipelines.previews.support import (
    SHA2,
    branch_build,
    go_live,
    pr_build,
    preview_pipeline,
    sent,
    start,
    status_of,
)

pytestmark = pytest.mark.django_db

GRACE = 3600


def close(pipeline: Pipeline, label: str, ago: float) -> None:
    services.preview_mark_closed(pipeline_id=pipeline.id, label=label, actor="github:octo", reason="closed")
    Preview.objects.filter(pipeline=pipeline, label=label).update(closed_at=timezone.now() - timedelta(seconds=ago))


@pytest.mark.parametrize(
    ("closed_ago", "reopened", "removed"),
    [
        (GRACE + 60, False, True),
        (GRACE - 60, False, False),
        (GRACE + 60, True, False),  # reopened within the grace: the mark is gone
    ],
)
def test_closed_previews_go_after_the_grace_and_a_reopen_keeps_them(settings, closed_ago, reopened, removed):
    settings.TROY_PREVIEW_CLOSED_GRACE_SECONDS = GRACE
    pipeline = preview_pipeline()
    go_live(start(pr_build(pipeline, 7)))
    close(pipeline, "pr-7", closed_ago)
    if reopened:
        assert services.preview_reopen(pipeline_id=pipeline.id, label="pr-7", actor="github:octo") is not None

    result = services.previews_remove_closed()

    assert result == ([f"{pipeline.name}/pr-7"] if removed else [])
    assert Preview.objects.filter(pipeline=pipeline, label="pr-7").exists() is not removed
    assert EdgePointer.objects.filter(host__startswith="pr-7--").exists() is not removed


def test_the_grace_setting_is_read_at_each_sweep(settings):
    pipeline = preview_pipeline()
    branch_build(pipeline)
    services.preview_mark_closed(pipeline_id=pipeline.id, branch="feature/login", actor="x", reason="deleted")
    Preview.objects.update(closed_at=timezone.now() - timedelta(seconds=120))
    settings.TROY_PREVIEW_CLOSED_GRACE_SECONDS = 3600
    assert services.previews_remove_closed() == []
    settings.TROY_PREVIEW_CLOSED_GRACE_SECONDS = 60
    assert services.previews_remove_closed() == [f"{pipeline.name}/feature-login"]


def test_a_closed_preview_still_deploying_waits_for_the_next_tick(settings):
    settings.TROY_PREVIEW_CLOSED_GRACE_SECONDS = GRACE
    pipeline = preview_pipeline()
    running = start(pr_build(pipeline, 7))
    close(pipeline, "pr-7", GRACE + 60)
    assert services.previews_remove_closed() == []
    go_live(running)
    assert services.previews_remove_closed() == [f"{pipeline.name}/pr-7"]


def test_the_remove_closed_previews_actor_runs_the_sweep(settings):
    settings.TROY_PREVIEW_CLOSED_GRACE_SECONDS = GRACE
    pipeline = preview_pipeline()
    pr_build(pipeline, 7)
    close(pipeline, "pr-7", GRACE + 1)
    tasks.remove_closed_previews()
    assert not Preview.objects.filter(pipeline=pipeline).exists()


def test_the_reaper_fails_stuck_preview_builds_and_leaves_production_alone(settings):
    settings.TROY_STUCK_DEPLOYING_SECONDS = 600
    pipeline = preview_pipeline()
    stuck = start(branch_build(pipeline))
    fresh = start(pr_build(pipeline, 3))
    Build.objects.filter(pk=stuck.pk).update(started_at=timezone.now() - timedelta(seconds=601))

    assert services.previews_reap_stuck() == [f"{pipeline.name} #{stuck.number}"]
    stuck.refresh_from_db()
    assert stuck.status == BuildStatus.FAILED and "reaper" in stuck.error
    assert status_of(fresh) == BuildStatus.RUNNING
    assert Pipeline.objects.get(pk=pipeline.pk).status == pipeline.status
    tasks.reap_stuck_pipelines()  # the periodic actor includes it (nothing left to reap)


def test_a_lost_start_message_is_sent_again_but_not_for_waiting_approval(
    settings, django_capture_on_commit_callbacks, broker
):
    settings.TROY_RESEND_WAITING_AFTER_SECONDS = 60
    pipeline = preview_pipeline()
    lost = branch_build(pipeline)
    pr_build(pipeline, 9, fork=True)
    busy = pr_build(pipeline, 4)
    start(busy)
    pr_build(pipeline, 4, SHA2)  # queued behind a running one: its end sends the start
    Build.objects.update(created_at=timezone.now() - timedelta(seconds=61))

    with django_capture_on_commit_callbacks(execute=True):
        resent = services.previews_resend_waiting()
    assert resent == [f"{pipeline.name}/feature-login"]
    assert sent(broker, "run_preview_deployment") == [(str(lost.preview_id),)]


def test_retention_keeps_what_every_preview_serves_and_never_counts_preview_builds_as_production():
    pipeline = preview_pipeline()
    served = go_live(start(branch_build(pipeline)))
    older = go_live(start(pr_build(pipeline, 5)))
    go_live(start(pr_build(pipeline, 5, SHA2)))
    production = Build.objects.create(
        pipeline=pipeline, number=99, kind=BuildKind.RELEASE, trigger=BuildTrigger.CLI, status=BuildStatus.SUCCEEDED
    )

    kept = services.build_ids_retained(pipeline_id=pipeline.id, retained=1)
    assert served.id in kept and production.id in kept
    assert older.id not in kept  # its preview serves a newer build

    services.preview_delete(pipeline_id=pipeline.id, label="feature-login", actor="alice")
    served.refresh_from_db()
    assert served.preview_id is None and served.preview_label == "feature-login"
    kept = services.build_ids_retained(pipeline_id=pipeline.id, retained=1)
    assert production.id in kept and served.id not in kept  # the newest *production* build is kept


def test_system_checks_name_previews_that_can_never_build_and_a_negative_grace(settings):
    from pipelines.checks import preview_grace_valid, previews_without_repository
    from tests.factories import PipelineFactory

    PipelineFactory(name="orphan", repository="", pull_request_previews=True)
    PipelineFactory(name="fine", repository="", preview_branches=[])
    preview_pipeline(name="built")
    [warning] = previews_without_repository(databases=["default"])
    assert warning.id == "pipelines.W030" and "orphan" in warning.msg and "fine" not in warning.msg
    assert preview_grace_valid() == []
    settings.TROY_PREVIEW_CLOSED_GRACE_SECONDS = -1
    assert [w.id for w in preview_grace_valid()] == ["pipelines.W031"]
