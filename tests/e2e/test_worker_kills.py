"""A worker SIGKILLed mid provisioning, mid deploy and mid deletion, on RabbitMQ and PostgreSQL:
the broker redelivers the unacknowledged message to the restarted worker, which resumes, and each
pipeline comes to rest with nothing left behind (one distribution, then none; no records, no files).

"Mid" is made deterministic with the test-only pause hook (``deployment_service/test_pauses.py``):
the worker holds at a named point while a file exists, the test kills it there."""

from __future__ import annotations

import os
from pathlib import Path
import secrets
import signal

import pytest

from tests.e2e.test_production_shape import _live_files, _pipeline_in, _records_for, _site_zip

pytestmark = [pytest.mark.e2e, pytest.mark.broker, pytest.mark.postgres]

POINTS = ("provision.after_distribution", "deploy.started", "delete.after_records")


def _kill(stack, process) -> None:
    os.killpg(process.popen.pid, signal.SIGKILL)
    process.popen.wait(timeout=10)
    stack.procs.started.remove(process)  # a dead process fails every wait_for


def _kill_at(stack, pauses: Path, point: str, worker, generation: int):
    """Wait until ``worker`` holds at ``point``, SIGKILL it, let the point pass, start a new worker."""
    stack.wait_for(f"worker holding at {point}", lambda: (pauses / f"{point}.reached").exists(), timeout=180)
    _kill(stack, worker)
    (pauses / f"{point}.hold").unlink()
    return stack.procs.start(f"worker-{generation}", "manage.py", "rundramatiq", "--processes", "1", "--threads", "2")


def _distributions_of(stack, pipeline_id: str) -> list[dict]:
    listed = stack.boto("cloudfront").list_distributions()["DistributionList"].get("Items", [])
    return [d for d in listed if pipeline_id in d.get("Comment", "")]


def test_a_worker_killed_mid_flow_is_resumed_by_redelivery(stack, tmp_path):
    pauses = tmp_path / "pauses"
    pauses.mkdir()
    for point in POINTS:
        (pauses / f"{point}.hold").touch()
    [first] = [proc for proc in stack.procs.started if proc.name == "worker"]
    first.stop()
    stack.procs.started.remove(first)
    stack.procs.env.update(TROY_TEST_PAUSE_DIR=str(pauses), TROY_TEST_PAUSE_AT=",".join(POINTS))
    worker = stack.procs.start("worker-1", "manage.py", "rundramatiq", "--processes", "1", "--threads", "2")

    # Provisioning: killed after CreateDistribution, before the Route53 records.
    name = f"kill-{secrets.token_hex(3)}"
    response = stack.api.post(
        stack.url("/api/v1/pipelines/"),
        json={"name": name, "repository": "", "branch": "main", "provision": True},
        timeout=10,
    )
    assert response.status_code == 201, response.text
    pipeline_id = response.json()["id"]
    worker = _kill_at(stack, pauses, "provision.after_distribution", worker, 2)
    ready = stack.wait_for(
        "provisioning resumed to ready_for_deployment",
        _pipeline_in(stack, pipeline_id, "ready_for_deployment", failed={"failed_to_provision"}),
    )
    assert [d["Id"] for d in _distributions_of(stack, pipeline_id)] == [ready["distribution_id"]]
    assert set(_records_for(stack, ready["domain"])) == {"A", "AAAA"}

    # Deploy: killed once the deploy step has started.
    files = {"index.html": b"<h1>resumed</h1>", "app.css": b"body{}"}
    response = stack.api.post(
        stack.url(f"/api/v1/pipelines/{pipeline_id}/releases/"),
        files={"file": ("site.zip", _site_zip(files), "application/zip")},
        data={"version": "1.0.0", "deploy": "true"},
        timeout=30,
    )
    assert response.status_code == 201, response.text
    worker = _kill_at(stack, pauses, "deploy.started", worker, 3)
    deployed = stack.wait_for(
        "deploy resumed to deployed", _pipeline_in(stack, pipeline_id, "deployed", failed={"failed_to_deploy"})
    )
    assert deployed["live_build"]["id"] == response.json()["build"]["id"]
    assert _live_files(stack, pipeline_id) == files

    # Deletion: killed after the records are gone, before the distribution and the files.
    response = stack.api.delete(stack.url(f"/api/v1/pipelines/{pipeline_id}/"), timeout=10)
    assert response.status_code == 202, response.text
    worker = _kill_at(stack, pauses, "delete.after_records", worker, 4)
    stack.wait_for(
        "deletion resumed until the row is removed",
        lambda: stack.api.get(stack.url(f"/api/v1/pipelines/{pipeline_id}/"), timeout=5).status_code == 404,
        timeout=180,
    )
    assert _distributions_of(stack, pipeline_id) == []
    assert _records_for(stack, ready["domain"]) == {}
    assert _live_files(stack, pipeline_id) == {}
    artifacts = stack.boto("s3").list_objects_v2(Bucket="troy-artifacts").get("Contents", [])
    assert artifacts == [], artifacts
