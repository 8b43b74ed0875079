"""``troy release``, ``builds``, ``rollback`` and ``events`` end to end: the CLI zips and uploads to
the live server, the worker stores and deploys to (moto) S3, the CLI follows the build to its end.

The pipeline is created and provisioned through the CLI too (``--provision``; the worker creates
the distribution and DNS records in moto)."""

from __future__ import annotations

import _thread
import hashlib
import io
import json
import threading
import time
import zipfile

from django.conf import settings
import pytest
import requests

from deployment_service import aws as aws_clients
from events.models import Event
from pipelines.choices import BuildStatus
from pipelines.choices import PipelineStatus as S
from pipelines.models import Build, Pipeline
from releases.models import Release
from tests.cli.conftest import wait_for
from tests.releases.helpers import live_files

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def shop(troy, aws, worker) -> Pipeline:
    """A provisioned pipeline named ``shop`` (ready for deployment)."""
    created = troy("pipelines", "create", "shop", "--provision")
    assert created.code == 0, created
    return wait_for(
        lambda: Pipeline.objects.filter(name="shop", status=S.READY_FOR_DEPLOYMENT).first(),
        what="shop to be provisioned",
    )


def write_site(root, *, title: str = "v1", extra: dict[str, bytes] | None = None):
    files = {
        "index.html": f"<html><title>{title}</title></html>".encode(),
        "about/index.html": b"<p>about</p>",
        "assets/app.3f9a1c.js": b"console.log('app');",
        "assets/style.css": b"body{color:red}",
        **(extra or {}),
    }
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
    return root


def live_objects(pipeline: Pipeline) -> dict[str, bytes]:
    """What the pipeline's live build serves, path → bytes (read through its stored manifest)."""
    return live_files(pipeline)


def test_release_of_a_folder_deploys_it_prints_the_site_url_and_exits_0(troy, shop, tmp_path):
    site = write_site(tmp_path / "site")

    result = troy("release", "shop", site, "--version", "v1")

    assert result.code == 0, result
    assert result.out == f"{shop.site_url}\n"
    assert "Zipped 4 files" in result.err
    assert "100%" in result.err  # upload progress
    assert "build #1: succeeded" in result.err and "Build #1 is live" in result.err
    assert live_objects(shop) == {
        "index.html": b"<html><title>v1</title></html>",
        "about/index.html": b"<p>about</p>",
        "assets/app.3f9a1c.js": b"console.log('app');",
        "assets/style.css": b"body{color:red}",
    }
    shop.refresh_from_db()
    assert shop.status == S.DEPLOYED and shop.live_build.number == 1
    assert Release.objects.get().version == "v1"


def test_release_json_output_parses_and_holds_the_final_build(troy, shop, tmp_path):
    result = troy("release", "shop", write_site(tmp_path / "site"), "--json")
    assert result.code == 0, result
    body = result.json()
    assert body["deployed"] is True and body["site_url"] == shop.site_url
    assert body["build"]["status"] == BuildStatus.SUCCEEDED and body["build"]["number"] == 1
    assert body["build"]["stats"]["files_uploaded"] == 4
    assert "build #1" in result.err  # progress stays on stderr


def test_the_same_folder_uploads_the_same_zip_twice(troy, shop, tmp_path):
    site = write_site(tmp_path / "site")
    first = troy("release", "shop", site, "--no-deploy", "--json")
    (site / "index.html").touch()  # a new mtime changes nothing
    second = troy("release", "shop", site, "--no-deploy", "--json")

    assert first.code == second.code == 0, (first, second)
    assert first.json()["sha256"] == second.json()["sha256"]
    assert first.json()["id"] != second.json()["id"]
    assert Release.objects.count() == 2 and len({r.sha256 for r in Release.objects.all()}) == 1


def test_no_deploy_only_stores_the_release(troy, shop, tmp_path):
    result = troy("release", "shop", write_site(tmp_path / "site"), "--version", "v9", "--no-deploy")

    assert result.code == 0, result
    release = Release.objects.get()
    assert result.out == f"{release.id}\n"
    assert release.version == "v9" and release.status == "stored"
    assert not Build.objects.exists()
    shop.refresh_from_db()
    assert shop.status == S.READY_FOR_DEPLOYMENT
    assert live_objects(shop) == {}


def test_a_zip_is_uploaded_as_is(troy, shop, tmp_path):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("index.html", "<p>from a zip</p>")
    (tmp_path / "site.zip").write_bytes(buffer.getvalue())

    result = troy("release", "shop", tmp_path / "site.zip", "--no-deploy", "--json")
    assert result.code == 0, result
    assert result.json()["sha256"] == hashlib.sha256(buffer.getvalue()).hexdigest()


def test_a_hostile_zip_is_refused_with_the_servers_error_code_and_nothing_changes(troy, shop, tmp_path):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("index.html", "<p>hi</p>")
        archive.writestr("../evil", "pwned")
    (tmp_path / "evil.zip").write_bytes(buffer.getvalue())

    result = troy("release", "shop", tmp_path / "evil.zip")

    assert result.code == 1, result
    assert "\nerror: Entry '../evil'" in result.err and "(unsafe_path)" in result.err
    assert result.out == ""
    assert not Release.objects.exists() and not Build.objects.exists()
    assert Pipeline.objects.get(pk=shop.pk).status == S.READY_FOR_DEPLOYMENT


def test_a_path_that_is_neither_a_folder_nor_a_zip_is_a_usage_error(troy, shop, tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    assert troy("release", "shop", tmp_path / "notes.txt").code == 2
    assert troy("release", "shop", tmp_path / "missing").code == 2
    assert not Release.objects.exists()


def test_builds_then_rollback_by_number_restores_the_earlier_site(troy, shop, tmp_path):
    v1 = write_site(tmp_path / "v1", title="v1", extra={"old.html": b"<p>only in v1</p>"})
    v2 = write_site(tmp_path / "v2", title="v2")
    assert troy("release", "shop", v1, "--version", "v1").code == 0
    assert troy("release", "shop", v2, "--version", "v2").code == 0
    assert live_objects(shop)["index.html"] == b"<html><title>v2</title></html>"
    assert "old.html" not in live_objects(shop)

    listed = troy("builds", "shop")
    assert listed.code == 0, listed
    header, *rows = listed.out.splitlines()
    assert header.split()[:5] == ["#", "STATUS", "KIND", "TRIGGER", "REF/SHA/VERSION"]
    assert [row.split()[:4] for row in rows] == [
        ["2", "succeeded", "release", "cli"],
        ["1", "succeeded", "release", "cli"],
    ]
    assert "version v2" in rows[0] and "version v1" in rows[1]

    rolled = troy("rollback", "shop", "1")

    assert rolled.code == 0, rolled
    assert rolled.out == f"{shop.site_url}\n"
    assert "Redeploying build #1 of shop as build #3" in rolled.err
    assert live_objects(shop)["index.html"] == b"<html><title>v1</title></html>"
    assert live_objects(shop)["old.html"] == b"<p>only in v1</p>"
    build = Build.objects.get(pipeline=shop, number=3)
    assert build.trigger == "rollback" and build.status == BuildStatus.SUCCEEDED
    assert Pipeline.objects.get(pk=shop.pk).live_build == build

    as_json = troy("builds", "shop", "--json")
    assert [b["number"] for b in as_json.json()] == [3, 2, 1]


def test_rollback_to_a_build_that_does_not_exist_says_so(troy, shop):
    result = troy("rollback", "shop", "7")
    assert result.code == 1 and "shop has no build #7" in result.err, result


def test_a_failed_deploy_exits_1_with_the_builds_error(troy, shop, tmp_path):
    # The live bucket disappears: the deploy step cannot upload, the build fails.
    s3 = aws_clients.client("s3")
    s3.delete_bucket(Bucket=settings.TROY_LIVE_BUCKET)

    result = troy("release", "shop", write_site(tmp_path / "site"))

    assert result.code == 1, result
    assert "error: build #1 failed: " in result.err
    assert result.out == ""
    assert Pipeline.objects.get(pk=shop.pk).status == S.FAILED_TO_DEPLOY


def test_events_are_printed_oldest_first_and_as_json(troy, shop, tmp_path):
    assert troy("release", "shop", write_site(tmp_path / "site")).code == 0

    result = troy("events", "shop")
    assert result.code == 0, result
    transitions = [line.split("[")[1].split("]")[0] for line in result.out.splitlines()]
    assert transitions == [
        "request_provisioning",
        "start_provisioning",
        "finish_provisioning",
        "queue_deployment #1",
        "start_deployment #1",
        "finish_deployment #1",
    ]
    assert "ready_for_deployment → queued" in result.out

    as_json = troy("events", "shop", "--json")
    events = as_json.json()
    assert [e["to_status"] for e in events] == [
        "provision_request",
        "provisioning",
        "ready_for_deployment",
        "queued",
        "deploying",
        "deployed",
    ]
    assert [e["id"] for e in events] == sorted(Event.objects.filter(pipeline_id=shop.id).values_list("id", flat=True))


def test_events_follow_prints_new_events_as_they_happen_until_the_pipeline_is_deleted(
    troy, user, token, live_server, aws, worker
):
    created = troy("pipelines", "create", "brief", "--json")
    pipeline_id = created.json()["id"]

    def delete_soon():
        time.sleep(1.0)
        requests.delete(
            f"{live_server.url}/api/v1/pipelines/{pipeline_id}/",
            headers={"Authorization": f"Token {token}"},
            timeout=10,
        )

    deleter = threading.Thread(target=delete_soon)
    deleter.start()
    watchdog = threading.Timer(30, _thread.interrupt_main)  # Ctrl-C if the follow never ends
    watchdog.start()
    try:
        result = troy("events", pipeline_id, "--follow", "--interval", "0.2", "--json")
    finally:
        watchdog.cancel()
        deleter.join()

    assert result.code == 0, result
    followed = [json.loads(line)["to_status"] for line in result.out.splitlines()]
    assert followed == ["scheduled_for_deletion", "deleting", "deleted"]
    assert "following" in result.err
    assert not Pipeline.objects.filter(pk=pipeline_id).exists()


def test_releasing_to_a_pipeline_that_is_not_provisioned_shows_the_409(troy, aws, tmp_path):
    assert troy("pipelines", "create", "draft").code == 0

    result = troy("release", "draft", write_site(tmp_path / "site"))

    assert result.code == 1, result
    assert "current status: pre_provisioned" in result.err
    assert "allowed now: " in result.err
    assert not Build.objects.exists()


def test_a_release_superseded_in_the_queue_exits_1_and_says_by_which_build(
    troy, aws, broker, token, live_server, tmp_path
):
    import dramatiq

    provisioner = dramatiq.Worker(broker, worker_timeout=100)
    provisioner.start()
    try:
        assert troy("pipelines", "create", "busy", "--provision").code == 0
        pipeline = wait_for(
            lambda: Pipeline.objects.filter(name="busy", status=S.READY_FOR_DEPLOYMENT).first(),
            what="busy to be provisioned",
        )
    finally:
        provisioner.stop()

    # No worker now: our release's build waits in the queue while a newer one is asked for, then a
    # worker starts and takes the newest.
    newer_zip = io.BytesIO()
    with zipfile.ZipFile(newer_zip, "w") as archive:
        archive.writestr("index.html", "<p>newer</p>")
    late_worker = dramatiq.Worker(broker, worker_timeout=100)

    def release_a_newer_one():
        wait_for(lambda: Build.objects.filter(pipeline=pipeline, number=1).exists(), what="build #1")
        answer = requests.post(
            f"{live_server.url}/api/v1/pipelines/{pipeline.id}/releases/",
            headers={"Authorization": f"Token {token}"},
            data={"deploy": "true"},
            files={"file": ("newer.zip", newer_zip.getvalue(), "application/zip")},
            timeout=30,
        )
        assert answer.status_code == 201, answer.text
        late_worker.start()

    other = threading.Thread(target=release_a_newer_one)
    other.start()
    try:
        result = troy("release", "busy", write_site(tmp_path / "site"), "--timeout", "60")
        other.join()
        wait_for(
            lambda: Build.objects.filter(pipeline=pipeline, number=2, status=BuildStatus.SUCCEEDED).exists(),
            what="build #2 to go live",
        )
    finally:
        other.join()
        late_worker.stop()

    assert result.code == 1, result
    assert "error: build #1 superseded: Superseded by build #2." in result.err
    assert result.out == ""
    assert live_objects(pipeline) == {"index.html": b"<p>newer</p>"}


def test_release_to_a_preview_prints_its_url_previews_lists_it_and_promote_makes_it_live(troy, shop, tmp_path):
    assert troy("release", "shop", write_site(tmp_path / "v1"), "--version", "v1").code == 0

    result = troy("release", "shop", write_site(tmp_path / "v2", title="v2"), "--preview", "feature-x")

    preview_url = f"https://feature-x--shop.{settings.TROY_BASE_DOMAIN}/"
    assert result.code == 0, result
    assert result.out == f"{preview_url}\n" and "is live on the preview" in result.err
    shop.refresh_from_db()
    assert shop.status == S.DEPLOYED and shop.live_build.number == 1
    assert live_objects(shop)["index.html"] == b"<html><title>v1</title></html>"

    listed = troy("previews", "shop")
    assert listed.code == 0, listed
    assert "feature-x" in listed.out and preview_url in listed.out and "#2" in listed.out

    promoted = troy("promote", "shop", "feature-x")
    assert promoted.code == 0, promoted
    assert promoted.out == f"{shop.site_url}\n"
    shop.refresh_from_db()
    assert shop.live_build.trigger == "promote" and shop.live_build.content_build.number == 2
    assert live_objects(shop)["index.html"] == b"<html><title>v2</title></html>"

    refused = troy("release", "shop", write_site(tmp_path / "v3"), "--preview", "bad--label")
    assert refused.code != 0 and "preview" in refused.err
