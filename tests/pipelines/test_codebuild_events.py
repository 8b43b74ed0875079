"""CodeBuild events applied to builds: phases, the deploy hand-off (once), failures, and the
same end state whatever order (and however many times) the events arrive."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
import pytest

from deployment_service.integrations.codebuild import parse_codebuild_time
from events.models import Event
from pipelines.choices import BuildStatus
from pipelines.choices import PipelineStatus as S
from pipelines.flows.codebuild import codebuild_event_apply
from pipelines.models import Build
from tests.pipelines.codebuild_support import (
    BUILD_ERROR,
    codebuild_events,
    fixture,
    new_codebuild_id,
    phase_event,
    running_build,
    sent,
    state_event,
)

pytestmark = pytest.mark.django_db

FIXTURE_CODEBUILD_ID = "troy-build:8745a7a9-c340-456a-9166-edf953571b01"


@pytest.fixture
def apply(django_capture_on_commit_callbacks):
    """Apply an event the way the SNS actor does, running on-commit sends like a real commit."""

    def run(event):
        with django_capture_on_commit_callbacks(execute=True):
            return codebuild_event_apply(event)

    return run


def deploys_of(broker, build) -> int:
    return sent(broker, "deploy_build").count((str(build.id),))


def snapshot(build_id) -> dict:
    build = Build.objects.select_related("pipeline").get(pk=build_id)
    return {
        "status": build.status,
        "phase": build.phase,
        "phases": build.phases,
        "logs_url": build.logs_url,
        "error": build.error,
        "pipeline": build.pipeline.status,
    }


# --- times ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, expected",
    [
        ("Nov 1, 2026 4:12:29 PM", datetime(2026, 11, 1, 16, 12, 29, tzinfo=UTC)),
        ("Dec 12, 2026 12:05:00 AM", datetime(2026, 12, 12, 0, 5, tzinfo=UTC)),
        ("Jan 3, 2027 12:30:01 PM", datetime(2027, 1, 3, 12, 30, 1, tzinfo=UTC)),
        ("2026-11-01T16:14:28Z", datetime(2026, 11, 1, 16, 14, 28, tzinfo=UTC)),
        ("yesterday", None),
        ("Foo 1, 2026 4:12:29 PM", None),
    ],
)
def test_codebuild_times_are_parsed_as_utc(text, expected):
    assert parse_codebuild_time(text) == expected


# --- the fixtures as delivered --------------------------------------------------------------------


def test_the_fixture_succeeded_event_hands_the_build_to_the_deploy_step_with_phases_and_logs(broker, apply):
    build = running_build(codebuild_build_id=FIXTURE_CODEBUILD_ID)

    result = apply(fixture("codebuild-build-state-change.json"))

    assert result.startswith("succeeded")
    build.refresh_from_db()
    assert build.status == BuildStatus.RUNNING  # the deploy step finishes it
    assert build.phase == "COMPLETED"
    assert build.logs_url.startswith("https://console.aws.amazon.com/cloudwatch/home?region=us-east-1#logEvent:")
    by_phase = {p["phase"]: p for p in build.phases}
    assert list(by_phase) == ["SUBMITTED", "DOWNLOAD_SOURCE", "INSTALL", "BUILD", "UPLOAD_ARTIFACTS", "COMPLETED"]
    assert by_phase["INSTALL"] == {
        "phase": "INSTALL",
        "status": "SUCCEEDED",
        "start": "2026-11-01T16:12:40+00:00",
        "end": "2026-11-01T16:13:10+00:00",
        "duration": 30,
        "context": [],
    }
    assert by_phase["BUILD"]["duration"] == 70
    assert deploys_of(broker, build) == 1


def test_succeeded_twice_deploys_once(broker, apply):
    build = running_build(codebuild_build_id=FIXTURE_CODEBUILD_ID)
    apply(fixture("codebuild-build-state-change.json"))
    before = snapshot(build.id)

    again = apply(fixture("codebuild-build-state-change.json"))

    assert again.startswith("ignored")
    assert deploys_of(broker, build) == 1
    assert snapshot(build.id) == before


def test_the_fixture_phase_change_records_the_phase_and_its_timing(broker, apply):
    build = running_build(codebuild_build_id=FIXTURE_CODEBUILD_ID)

    result = apply(fixture("codebuild-build-phase-change.json"))

    assert result.startswith("recorded")
    build.refresh_from_db()
    assert build.status == BuildStatus.RUNNING
    assert build.phase == "PRE_BUILD"  # INSTALL finished: the next phase has begun
    assert build.phases == [
        {
            "phase": "INSTALL",
            "status": "SUCCEEDED",
            "start": "2026-11-01T16:12:40+00:00",
            "end": "2026-11-01T16:13:10+00:00",
            "duration": 30,
            "context": [],
        }
    ]
    assert "stream=8745a7a9-c340-456a-9166-edf953571b01" in build.logs_url
    assert deploys_of(broker, build) == 0


def test_events_of_other_projects_and_unknown_builds_change_nothing(broker, apply):
    build = running_build(codebuild_build_id=FIXTURE_CODEBUILD_ID)
    before = snapshot(build.id)

    other = fixture("codebuild-build-state-change.json")
    other["detail"]["project-name"] = "someone-else"
    other["detail"]["build-id"] = other["detail"]["build-id"].replace("troy-build:", "someone-else:")
    unknown = state_event(new_codebuild_id(), "SUCCEEDED", phases=[], current_phase="COMPLETED")
    not_codebuild = {"source": "aws.s3", "detail-type": "Object Created", "detail": {}}

    assert apply(other).startswith("ignored")
    assert apply(unknown).startswith("ignored")
    assert apply(not_codebuild).startswith("ignored")
    assert apply({"detail-type": "CodeBuild Build State Change", "source": "aws.codebuild"}).startswith("ignored")
    assert snapshot(build.id) == before
    assert deploys_of(broker, build) == 0


# --- failures -------------------------------------------------------------------------------------


def test_a_failed_build_fails_the_build_and_pipeline_with_the_phase_and_message(broker, apply):
    cb_id = new_codebuild_id()
    build = running_build(codebuild_build_id=cb_id)

    for event in codebuild_events(cb_id, outcome="FAILED", failed_phase="BUILD"):
        apply(event)

    build.refresh_from_db()
    assert build.status == BuildStatus.FAILED
    assert build.pipeline.status == S.FAILED_TO_DEPLOY
    assert "FAILED in BUILD." in build.error
    assert BUILD_ERROR in build.error
    assert build.pipeline.last_error == build.error
    assert deploys_of(broker, build) == 0
    assert sent(broker, "report_commit_status").count((str(build.id),)) >= 1
    event = Event.objects.filter(pipeline_id=build.pipeline_id, transition="fail_deployment").get()
    assert event.actor == "system:codebuild" and BUILD_ERROR in event.message


def test_a_failed_test_phase_is_named_test(broker, apply):
    cb_id = new_codebuild_id()
    build = running_build(codebuild_build_id=cb_id)
    for event in codebuild_events(cb_id, outcome="FAILED", failed_phase="POST_BUILD"):
        apply(event)
    build.refresh_from_db()
    assert build.status == BuildStatus.FAILED
    assert "in Test (POST_BUILD)" in build.error


@pytest.mark.parametrize(
    "outcome, words",
    [
        ("FAULT", "FAULT in BUILD."),
        ("TIMED_OUT", "timed out in BUILD (limit 60 minutes)."),
        ("STOPPED", "STOPPED in BUILD."),
    ],
)
def test_every_terminal_status_but_succeeded_fails_the_build(broker, apply, outcome, words):
    cb_id = new_codebuild_id()
    build = running_build(codebuild_build_id=cb_id)
    apply(codebuild_events(cb_id, outcome=outcome)[-1])
    build.refresh_from_db()
    assert build.status == BuildStatus.FAILED and build.pipeline.status == S.FAILED_TO_DEPLOY
    assert words in build.error
    assert deploys_of(broker, build) == 0


def test_an_unknown_terminal_status_is_a_failure(broker, apply):
    cb_id = new_codebuild_id()
    build = running_build(codebuild_build_id=cb_id)
    apply(
        state_event(cb_id, "EXPLODED", phases=[], current_phase="COMPLETED", current_context=["WEIRD: something new"])
    )
    build.refresh_from_db()
    assert build.status == BuildStatus.FAILED
    assert build.error == "CodeBuild build EXPLODED. WEIRD: something new"


def test_stopped_after_a_cancel_says_cancelled(broker, apply):
    cb_id = new_codebuild_id()
    build = running_build(codebuild_build_id=cb_id)
    Build.objects.filter(pk=build.id).update(cancel_requested=True)
    apply(codebuild_events(cb_id, outcome="STOPPED")[-1])
    build.refresh_from_db()
    assert build.status == BuildStatus.FAILED
    assert build.error.startswith("Cancelled on request: CodeBuild stopped the build in BUILD.")


def test_succeeded_after_a_cancel_is_not_deployed(broker, apply):
    cb_id = new_codebuild_id()
    build = running_build(codebuild_build_id=cb_id)
    Build.objects.filter(pk=build.id).update(cancel_requested=True)
    apply(codebuild_events(cb_id)[-1])
    build.refresh_from_db()
    assert build.status == BuildStatus.FAILED
    assert "not deployed" in build.error
    assert deploys_of(broker, build) == 0


# --- late, duplicated and out-of-order events -----------------------------------------------------


def test_a_stale_in_progress_after_succeeded_is_ignored(broker, apply):
    cb_id = new_codebuild_id()
    build = running_build(codebuild_build_id=cb_id)
    events = codebuild_events(cb_id)
    apply(events[-1])
    before = snapshot(build.id)

    assert apply(events[0]).startswith("ignored")  # IN_PROGRESS
    assert apply(events[5]).startswith("ignored")  # a phase change
    assert snapshot(build.id) == before
    assert before["phase"] == "COMPLETED"
    assert deploys_of(broker, build) == 1


def test_phase_events_after_a_failure_are_ignored(broker, apply):
    cb_id = new_codebuild_id()
    build = running_build(codebuild_build_id=cb_id)
    events = codebuild_events(cb_id, outcome="FAILED")
    apply(events[-1])
    before = snapshot(build.id)
    late = phase_event(
        cb_id, "FINALIZING", "SUCCEEDED", datetime(2027, 1, 1, tzinfo=UTC), datetime(2027, 1, 1, 0, 1, tzinfo=UTC), []
    )
    assert apply(late).startswith("ignored")
    assert snapshot(build.id) == before


@pytest.mark.parametrize("outcome", ["SUCCEEDED", "FAILED"])
@hypothesis_settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(data=st.data())
def test_any_order_with_duplicates_ends_like_the_clean_order(broker, apply, outcome, data):
    clean_id, shuffled_id = new_codebuild_id(), new_codebuild_id()
    clean_build = running_build(codebuild_build_id=clean_id)
    shuffled_build = running_build(codebuild_build_id=shuffled_id)
    clean_events = codebuild_events(clean_id, outcome=outcome)
    shuffled_events = codebuild_events(shuffled_id, outcome=outcome)

    order = data.draw(st.permutations(range(len(shuffled_events))), label="order")
    duplicates = data.draw(
        st.lists(st.tuples(st.integers(0, len(order)), st.sampled_from(order)), max_size=6),
        label="duplicates (position, event)",
    )
    delivered = list(order)
    for position, index in duplicates:
        delivered.insert(position, index)

    for event in clean_events:
        apply(event)
    for index in delivered:
        apply(shuffled_events[index])

    clean, shuffled = snapshot(clean_build.id), snapshot(shuffled_build.id)
    clean["logs_url"] = clean["logs_url"].replace(clean_id.split(":")[1], "STREAM")
    shuffled["logs_url"] = shuffled["logs_url"].replace(shuffled_id.split(":")[1], "STREAM")
    assert shuffled == clean
    assert deploys_of(broker, shuffled_build) == deploys_of(broker, clean_build) == (outcome == "SUCCEEDED")
    expected = BuildStatus.RUNNING if outcome == "SUCCEEDED" else BuildStatus.FAILED
    assert clean["status"] == expected
