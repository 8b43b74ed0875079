"""Automated previews in the services (pipelines/services/preview_sources.py): labels, branch
patterns, newest wins per label, fork approval, closing; never the pipeline's status."""

from __future__ import annotations

import pytest

from events.models import Event
from pipelines import services
from pipelines.choices import BuildKind, BuildStatus, BuildTrigger, PreviewSource
from pipelines.choices import PipelineStatus as S
from pipelines.exceptions import NothingToApprove
from pipelines.models import Build, Pipeline, Preview
from pipelines.validators import validate_preview_label
from tests.factories import put_in_status
from tests.pipelines.previews.support import (
    SHA1,
    SHA2,
    SHA3,
    branch_build,
    go_live,
    pr_build,
    preview_pipeline,
    sent,
    start,
    status_of,
)

pytestmark = pytest.mark.django_db


# --- labels and patterns (no database) ---------------------------------------------------------


@pytest.mark.parametrize(
    ("branch", "label"),
    [
        ("feature/login", "feature-login"),
        ("Feature/Login_Form", "feature-login-form"),
        ("fix--double", "fix-double"),
        ("-leading/trailing-", "leading-trailing"),
        ("déjà-vu", "d-j-vu"),
        ("___", "branch"),
        ("pr-7", "branch-pr-7"),
        ("PR-12", "branch-pr-12"),
        ("b12", "branch-b12"),
        ("pr-7-fix", "pr-7-fix"),
        ("b12x", "b12x"),
        ("release/2026.12", "release-2026-12"),
    ],
)
def test_a_branch_label_is_a_dns_safe_slug_and_never_a_reserved_form(branch, label):
    assert services.preview_label_for_branch(branch) == label
    validate_preview_label(label)  # a label a person could have chosen too


def test_an_overlong_branch_label_is_cut_with_a_stable_hash():
    branch = "feature/" + "very-long-name-" * 6
    label = services.preview_label_for_branch(branch)
    assert len(label) <= 63 and label.startswith("feature-very-long-name")
    assert label == services.preview_label_for_branch(branch)  # stable
    assert label != services.preview_label_for_branch(branch + "2")  # a sibling stays apart
    validate_preview_label(label)


@pytest.mark.parametrize(
    ("patterns", "branch", "matches"),
    [
        (["feature/*"], "feature/a", True),
        (["feature/*"], "feature/a/b", True),  # fnmatch: * crosses /
        (["feature/*"], "features/a", False),
        (["feature/*"], "Feature/a", False),  # case-sensitive, as git is
        (["release-?"], "release-1", True),
        (["release-?"], "release-10", False),
        (["*"], "anything", True),
        ([], "feature/a", False),
        (["main", "dev*"], "develop", True),
        (["[!x]*"], "xray", False),
    ],
)
def test_preview_branch_patterns(patterns, branch, matches):
    assert services.preview_branch_matches(patterns, branch) is matches


@pytest.mark.parametrize("patterns", ["feature/*", [""], [" x"], ["x"] * 51, [3]])
def test_invalid_preview_branch_patterns_are_refused(patterns):
    with pytest.raises(ValueError):
        services.preview_branches_check(patterns)


@pytest.mark.parametrize("label", ["pr-1", "pr-123", "b7"])
def test_a_person_may_not_choose_a_reserved_label(label):
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError):
        services.preview_label_clean(label)


# --- requesting builds ----------------------------------------------------------------------------


def test_a_branch_preview_build_is_queued_beside_production_without_touching_it():
    pipeline = preview_pipeline()
    build = branch_build(pipeline)

    assert (build.kind, build.trigger, build.status) == (BuildKind.AUTOMATED, BuildTrigger.PUSH, BuildStatus.QUEUED)
    assert (build.ref, build.commit_sha, build.preview_label) == ("feature/login", SHA1, "feature-login")
    preview = Preview.objects.get(pk=build.preview_id)
    assert (preview.source, preview.branch, preview.label) == (PreviewSource.BRANCH, "feature/login", "feature-login")
    pipeline.refresh_from_db()
    assert pipeline.status == S.DEPLOYED and pipeline.live_build_id is None
    event = Event.objects.get(pipeline_id=pipeline.id, transition="preview_queue")
    assert event.from_status == event.to_status == S.DEPLOYED


def test_a_preview_build_starts_codebuild_and_going_live_moves_only_the_preview(
    django_capture_on_commit_callbacks, broker
):
    pipeline = preview_pipeline()
    with django_capture_on_commit_callbacks(execute=True):
        build = start(branch_build(pipeline))
    assert sent(broker, "run_codebuild") == [(str(build.id),)]
    assert Pipeline.objects.get(pk=pipeline.pk).status == S.DEPLOYED  # not deploying
    build = go_live(build)
    preview = Preview.objects.get(pk=build.preview_id)
    assert build.status == BuildStatus.SUCCEEDED and preview.build_id == build.id
    pipeline.refresh_from_db()
    assert pipeline.status == S.DEPLOYED and pipeline.live_build_id is None


def test_two_branches_that_slug_alike_get_two_previews():
    pipeline = preview_pipeline(preview_branches=["*"])
    first, second = branch_build(pipeline, "feature/a"), branch_build(pipeline, "feature-a")
    assert first.preview_label == "feature-a"
    assert second.preview_label.startswith("feature-a-") and second.preview_id != first.preview_id
    assert branch_build(pipeline, "feature-a", SHA2).preview_id == second.preview_id  # the same one again


def test_a_release_preview_holding_the_slug_is_not_taken_over():
    pipeline = preview_pipeline()
    Preview.objects.create(pipeline=pipeline, label="feature-login", host="feature-login--x.sites.troy.test")
    build = branch_build(pipeline)
    assert build.preview_label != "feature-login"


def test_a_pipeline_that_cannot_deploy_refuses_preview_builds():
    pipeline = put_in_status(preview_pipeline(), S.PRE_PROVISIONED)
    from deployment_service.exceptions import InvalidTransition

    with pytest.raises(InvalidTransition):
        branch_build(pipeline)
    assert not Build.objects.exists()


# --- newest wins per label -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "other_label_make"),
    [
        (lambda p, sha: branch_build(p, "feature/x", sha), lambda p: branch_build(p, "feature/y", SHA1)),
        (lambda p, sha: pr_build(p, 7, sha), lambda p: pr_build(p, 8, SHA1)),
    ],
    ids=["branch", "pull-request"],
)
def test_newest_wins_per_label_and_other_labels_are_left_alone(
    make, other_label_make, django_capture_on_commit_callbacks, broker
):
    pipeline = preview_pipeline()
    other = other_label_make(pipeline)
    first = make(pipeline, SHA1)
    second = make(pipeline, SHA2)
    assert status_of(first) == BuildStatus.SUPERSEDED and status_of(second) == BuildStatus.QUEUED
    assert status_of(other) == BuildStatus.QUEUED

    running = start(second)
    with django_capture_on_commit_callbacks(execute=True):
        third = make(pipeline, SHA3)
    running.refresh_from_db()
    # Still in CodeBuild: asked to stop; its end (a failure) starts the newest.
    assert running.status == BuildStatus.RUNNING and running.cancel_requested
    assert f"#{third.number}" in running.cancel_requested_by
    assert sent(broker, "stop_codebuild") == [(str(running.id),)]
    services.deployment_fail(build_id=running.id, error="stopped")
    assert services.preview_deployment_start(preview_id=third.preview_id).pk == third.pk
    assert status_of(other) == BuildStatus.QUEUED


def test_a_running_build_past_codebuild_finishes_and_the_newer_one_follows():
    pipeline = preview_pipeline()
    running = start(branch_build(pipeline))
    Build.objects.filter(pk=running.pk).update(phases=[{"phase": "COMPLETED", "build_status": "SUCCEEDED"}])
    newer = branch_build(pipeline, sha=SHA2)
    running.refresh_from_db()
    assert not running.cancel_requested
    go_live(running)
    assert services.preview_deployment_start(preview_id=newer.preview_id).pk == newer.pk


# --- forks ---------------------------------------------------------------------------------------


def test_a_forks_pull_request_waits_for_approval_then_builds_without_secrets(
    django_capture_on_commit_callbacks, broker
):
    pipeline = preview_pipeline()
    build = pr_build(pipeline, 9, fork=True)
    assert build.awaiting_approval and build.from_fork and build.preview_label == "pr-9"
    assert services.preview_deployment_start(preview_id=build.preview_id) is None  # not before approval

    with django_capture_on_commit_callbacks(execute=True):
        approved = services.preview_approve(pipeline_id=pipeline.id, label="pr-9", actor="alice")
    assert approved.pk == build.pk and not approved.awaiting_approval and approved.approved_by == "alice"
    assert sent(broker, "run_preview_deployment") == [(str(build.preview_id),)]
    started = start(approved)
    assert started.from_fork
    assert Event.objects.filter(pipeline_id=pipeline.id, transition="preview_approve", actor="alice").exists()


def test_only_the_newest_waiting_fork_build_is_approved_and_an_unapproved_push_stops_nothing():
    pipeline = preview_pipeline()
    first = pr_build(pipeline, 9, SHA1, fork=True)
    services.preview_approve(pipeline_id=pipeline.id, label="pr-9", actor="alice")
    running = start(first)
    second = pr_build(pipeline, 9, SHA2, fork=True)
    third = pr_build(pipeline, 9, SHA3, fork=True)
    running.refresh_from_db()
    assert running.status == BuildStatus.RUNNING and not running.cancel_requested
    assert status_of(second) == BuildStatus.SUPERSEDED and status_of(third) == BuildStatus.QUEUED

    approved = services.preview_approve(pipeline_id=pipeline.id, label="pr-9", actor="alice")
    assert approved.pk == third.pk
    running.refresh_from_db()
    assert running.cancel_requested  # approving the newer one stops the older


@pytest.mark.parametrize("fork", [False, None], ids=["not-a-fork", "no-build"])
def test_approving_with_nothing_waiting_is_a_409(fork):
    pipeline = preview_pipeline()
    if fork is not None:
        pr_build(pipeline, 9, fork=fork)
    else:
        Preview.objects.create(pipeline=pipeline, label="pr-9", host="pr-9--x.sites.troy.test")
    with pytest.raises(NothingToApprove) as caught:
        services.preview_approve(pipeline_id=pipeline.id, label="pr-9", actor="alice")
    assert caught.value.code == "nothing_to_approve" and caught.value.http_status == 409


# --- closing -------------------------------------------------------------------------------------


def test_closing_marks_the_preview_and_cancels_its_queued_builds_and_a_new_build_reopens():
    pipeline = preview_pipeline()
    queued = pr_build(pipeline, 7)
    preview = services.preview_mark_closed(pipeline_id=pipeline.id, label="pr-7", actor="github:octo", reason="merged")
    assert preview is not None and preview.closed_at is not None
    assert status_of(queued) == BuildStatus.CANCELLED
    again = services.preview_mark_closed(pipeline_id=pipeline.id, label="pr-7", actor="github:octo", reason="x")
    assert again.closed_at == preview.closed_at  # once
    assert Event.objects.filter(pipeline_id=pipeline.id, transition="preview_close").count() == 1

    pr_build(pipeline, 7, SHA2)  # reopened (a reopen builds)
    assert Preview.objects.get(pk=preview.pk).closed_at is None


def test_a_deleted_branch_closes_only_its_branch_preview():
    pipeline = preview_pipeline()
    branch_build(pipeline, "feature/a")
    other = branch_build(pipeline, "feature/b")
    preview = services.preview_mark_closed(
        pipeline_id=pipeline.id, branch="feature/a", actor="github:octo", reason="deleted"
    )
    assert preview.label == "feature-a" and preview.closed_at is not None
    assert Preview.objects.get(pk=other.preview_id).closed_at is None
    assert services.preview_mark_closed(pipeline_id=pipeline.id, branch="nope", actor="x", reason="y") is None
