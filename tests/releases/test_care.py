"""Periodic care of releases: a lost store message is sent again, orphaned spool files go."""

from datetime import timedelta
import os
import subprocess
import time

from django.utils import timezone
import pytest

from pipelines.choices import PipelineStatus as S
from pipelines.flows.deploy.workdirs import stale_workdirs_sweep
from releases import services
from releases.choices import ReleaseStatus
from releases.models import Release
from releases.storage import release_store_run
from tests.factories import PipelineFactory, put_in_status
from tests.releases.helpers import upload, zip_bytes

pytestmark = pytest.mark.django_db


def pending_release(pipeline):
    release, _build = services.release_upload(
        pipeline=pipeline, upload=upload(zip_bytes({"index.html": "hi"})), actor="alice"
    )
    return release


def test_a_release_whose_store_message_was_lost_is_stored_after_the_resend(
    aws, settings, spool, django_capture_on_commit_callbacks
):
    pipeline = put_in_status(PipelineFactory(), S.DEPLOYED)
    with django_capture_on_commit_callbacks(execute=False):  # the store message never reaches a broker
        release = pending_release(pipeline)
    settings.TROY_RESEND_WAITING_AFTER_SECONDS = 300
    assert services.releases_resend_pending() == []  # not waiting long enough yet

    later = timezone.now() + timedelta(seconds=301)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        assert services.releases_resend_pending(now=later) == [str(release.id)]
    assert len(callbacks) == 1
    release_store_run(release_id=release.id)  # what the re-sent message runs
    assert Release.objects.get(pk=release.pk).status == ReleaseStatus.STORED


def test_spool_sweep_removes_only_old_files_of_no_pending_release(spool, django_capture_on_commit_callbacks):
    pipeline = put_in_status(PipelineFactory(), S.DEPLOYED)
    with django_capture_on_commit_callbacks(execute=False):
        waiting = pending_release(pipeline)
    orphan = spool / "0b6f0c7e-3f6e-4a43-9d7e-2f1c1f0f6a11.zip"
    orphan.write_bytes(b"left by a process killed before its commit")
    fresh_orphan = spool / "a-fresh.upload"
    fresh_orphan.write_bytes(b"maybe still being written")
    day_ago = time.time() - 2 * 24 * 60 * 60
    for path in (orphan, waiting.spool_path):
        os.utime(path, (day_ago, day_ago))

    removed = services.release_spool_sweep()

    assert removed == [orphan.name]
    assert waiting.spool_path.exists() and fresh_orphan.exists() and not orphan.exists()


def test_the_care_removes_temp_dirs_of_killed_deploys_only(settings, tmp_path):
    settings.FILE_UPLOAD_TEMP_DIR = str(tmp_path)
    dead_pid = subprocess.Popen(["true"])  # a process that has exited and been reaped
    dead_pid.wait()
    old = time.time() - 2 * 60 * 60

    def workdir(name: str, pid: int | None, mtime: float):
        path = tmp_path / name
        path.mkdir()
        (path / "artifact.zip").write_bytes(b"zip")
        if pid is not None:
            (path / "owner.pid").write_text(str(pid))
        os.utime(path, (mtime, mtime))
        return path

    killed = workdir("troy-deploy-killed", dead_pid.pid, old)
    no_owner = workdir("troy-deploy-noowner", None, old)
    running = workdir("troy-deploy-running", os.getpid(), old)  # a long deploy still in progress
    young = workdir("troy-deploy-young", dead_pid.pid, time.time())
    other = workdir("someone-else", dead_pid.pid, old)

    removed = stale_workdirs_sweep()
    assert sorted(removed) == ["troy-deploy-killed", "troy-deploy-noowner"]
    assert not killed.exists() and not no_owner.exists()
    assert running.exists() and young.exists() and other.exists()
