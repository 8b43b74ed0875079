"""Races on PostgreSQL (the pipeline row lock is what makes them safe): CodeBuild's SUCCEEDED
arriving twice at once (two SNS deliveries, or a delivery and the reconciler) deploys once; a
SUCCEEDED racing a FAILED report for the same build ends in exactly one of the two outcomes."""

from __future__ import annotations

import threading

from django.db import connection
import pytest

from pipelines.choices import BuildStatus
from pipelines.flows.codebuild import codebuild_event_apply
from pipelines.models import Build
from tests.pipelines.codebuild_support import codebuild_events, new_codebuild_id, running_build, sent

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def run_together(*fns) -> list:
    barrier = threading.Barrier(len(fns))
    results: list = [None] * len(fns)

    def work(i: int) -> None:
        try:
            barrier.wait()
            results[i] = fns[i]()
        except Exception as exc:
            results[i] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(fns))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return results


def test_four_succeeded_reports_at_once_deploy_once(broker):
    cb_id = new_codebuild_id()
    build = running_build(codebuild_build_id=cb_id)
    succeeded = codebuild_events(cb_id)[-1]

    results = run_together(*[lambda: codebuild_event_apply(succeeded)] * 4)

    assert sorted(r.split(":")[0] for r in results) == ["ignored", "ignored", "ignored", "succeeded"], results
    assert sent(broker, "deploy_build") == [(str(build.id),)]


def test_succeeded_racing_failed_ends_in_one_outcome(broker):
    cb_id = new_codebuild_id()
    build = running_build(codebuild_build_id=cb_id)
    succeeded = codebuild_events(cb_id)[-1]
    failed = codebuild_events(cb_id, outcome="FAILED")[-1]

    results = run_together(lambda: codebuild_event_apply(succeeded), lambda: codebuild_event_apply(failed))

    outcomes = sorted(r.split(":")[0] for r in results)
    assert outcomes in (["ignored", "succeeded"], ["failed", "ignored"]), results
    build.refresh_from_db()
    deploys = sent(broker, "deploy_build")
    if outcomes == ["ignored", "succeeded"]:
        assert build.status == BuildStatus.RUNNING and deploys == [(str(build.id),)]
    else:
        assert build.status == BuildStatus.FAILED and deploys == []
    assert Build.objects.filter(pk=build.id).count() == 1
