"""Retention (pipelines/flows/retention.py): the builds a pipeline keeps at the edge, and the
manifests and blobs of the others deleted from the live bucket (moto S3), safely beside deploys.

Builds go live through the real services; their manifests and blobs are written with the
edge/manifest.py helpers, as the deploy step writes them."""

from __future__ import annotations

from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
import hashlib
import threading
from unittest import mock

from django.conf import settings
import dramatiq
from dramatiq import Message
import pytest

from deployment_service import aws as aws_clients
from edge.manifest import FileEntry, Manifest, blob_key, content_key, dumps, manifest_key
from edge.rules import credential_make
from pipelines import services, tasks
from pipelines.choices import BuildKind, BuildStatus, BuildTrigger, PointerKind
from pipelines.choices import PipelineStatus as S
from pipelines.flows.retention import retention_run
from pipelines.models import Build, EdgePointer, Pipeline, pointer_value
from tests.factories import PipelineFactory, put_in_status
from tests.retry_support import AwsFaults, access_denied, run_like_dramatiq, server_error, throttling

pytestmark = pytest.mark.django_db

HTML = ("text/html", "public, max-age=0, must-revalidate")
ASSET = ("application/javascript", "public, max-age=31536000, immutable")


# --- writing builds as the deploy step does ----------------------------------------------------


@contextmanager
def s3_clock(ago: timedelta):
    """Objects written inside get a LastModified ``ago`` in the past (moto's clock, not ours)."""
    past = (datetime.now(UTC) - ago).replace(tzinfo=None)
    with mock.patch("moto.s3.models.utcnow", return_value=past):
        yield


LONG_AGO = timedelta(hours=3)  # past the default one-hour grace


def s3():
    return aws_clients.client("s3")


def put_blob(pipeline: Pipeline, data: bytes, headers: tuple[str, str] = HTML) -> str:
    key = content_key(hashlib.sha256(data).hexdigest(), *headers)
    s3().put_object(
        Bucket=settings.TROY_LIVE_BUCKET,
        Key=blob_key(str(pipeline.id), key),
        Body=data,
        ContentType=headers[0],
        CacheControl=headers[1],
    )
    return key


def store(pipeline: Pipeline, build: Build, files: dict[str, bytes]) -> dict[str, str]:
    """The build's blobs and manifest in the live bucket; returns path → content key."""
    entries = {}
    for path, data in files.items():
        headers = ASSET if path.endswith(".js") else HTML
        entries[path] = FileEntry(
            key=put_blob(pipeline, data, headers), type=headers[0], cache=headers[1], size=len(data)
        )
    manifest = Manifest(pipeline_id=str(pipeline.id), build_id=str(build.id), files=entries)
    s3().put_object(
        Bucket=settings.TROY_LIVE_BUCKET,
        Key=manifest_key(str(pipeline.id), str(build.id)),
        Body=dumps(manifest),
        ContentType="application/json",
    )
    return {path: entry.key for path, entry in entries.items()}


def request_release(pipeline: Pipeline) -> Build:
    return services.build_request(
        pipeline_id=pipeline.id,
        kind=BuildKind.RELEASE,
        trigger=BuildTrigger.CLI,
        actor="alice",
        artifact_key=f"releases/{pipeline.id}/{Build.objects.filter(pipeline=pipeline).count() + 1}.zip",
    )


def deploy(pipeline: Pipeline, files: dict[str, bytes]) -> tuple[Build, dict[str, str]]:
    """A release build that goes live with ``files`` stored (blobs, manifest, then finish)."""
    build = request_release(pipeline)
    services.deployment_start(pipeline_id=pipeline.id)
    keys = store(pipeline, build, files)
    services.deployment_finish(build_id=build.id, stats={"files_total": len(files)})
    build.refresh_from_db()
    return build, keys


def rollback(source: Build) -> Build:
    """A redeploy of a retained build: the pointer only (nothing written)."""
    build = services.build_redeploy(build_id=source.id, actor="alice")
    services.deployment_start(pipeline_id=source.pipeline_id)
    services.deployment_finish(build_id=build.id, content_build_id=source.served_build_id)
    build.refresh_from_db()
    return build


def site(n: int) -> dict[str, bytes]:
    """Build n's files: one page of its own, one asset of its own, one asset every build shares."""
    return {
        "index.html": f"<h1>build {n}</h1>".encode(),
        f"app.{n:08x}a1.js": f"console.log({n})".encode(),
        "vendor.3f9a1c2b.js": b"shared by every build",
    }


def keys_under(pipeline: Pipeline, folder: str) -> set[str]:
    prefix = f"{pipeline.id}/{folder}/"
    listed = s3().list_objects_v2(Bucket=settings.TROY_LIVE_BUCKET, Prefix=prefix)
    return {item["Key"][len(prefix) :] for item in listed.get("Contents", [])}


def manifests(pipeline: Pipeline) -> set[str]:
    return {name.removesuffix(".json") for name in keys_under(pipeline, "builds")}


def on_s3_call(monkeypatch, operation: str, handler) -> None:
    """``handler(params)`` runs as each S3 ``operation`` request is prepared (before it is sent)."""
    original = aws_clients.client

    def client(service, **kwargs):
        made = original(service, **kwargs)
        if service == "s3":
            made.meta.events.register(
                f"provide-client-params.s3.{operation}",
                lambda params, **_: handler(params),
                unique_id=f"test-retention-{operation}",
            )
        return made

    monkeypatch.setattr(aws_clients, "client", client)


@pytest.fixture
def pipeline(aws) -> Pipeline:
    return put_in_status(PipelineFactory(repository=""), S.READY_FOR_DEPLOYMENT, edge_router="v1")


@pytest.fixture
def five_builds(pipeline, settings):
    """Builds #1–#5 stored long ago; #6 a pointer-only rollback to #1 (live); a second host points
    at #2; a rollback to #3 is queued. With 2 retained: #4 is the only build to let go."""
    settings.TROY_RETAINED_BUILDS = 2
    with s3_clock(LONG_AGO):
        built = {n: deploy(pipeline, site(n)) for n in range(1, 6)}
    live = rollback(built[1][0])
    EdgePointer.objects.create(host="preview.example.test", pipeline=pipeline, build=built[2][0])
    queued = services.build_redeploy(build_id=built[3][0].id, actor="alice")
    return {"built": built, "live": live, "queued": queued}


def stored_numbers(pipeline: Pipeline) -> list[int]:
    return sorted(Build.objects.filter(pipeline=pipeline, stored_at__isnull=False).values_list("number", flat=True))


# --- what is kept and what goes ------------------------------------------------------------------


def test_keeps_the_newest_the_live_the_pointed_at_and_the_queued_rollback_source(pipeline, five_builds, monkeypatch):
    built = five_builds["built"]
    dropped, dropped_keys = built[4]
    shared = dropped_keys["vendor.3f9a1c2b.js"]
    deleted: list[list[str]] = []
    on_s3_call(
        monkeypatch, "DeleteObjects", lambda params: deleted.append([o["Key"] for o in params["Delete"]["Objects"]])
    )

    report = retention_run(pipeline_id=pipeline.id)

    assert report.unstored == [str(dropped.id)] and not report.skipped
    # #1 (live, through rollback #6), #5 (newest), #2 (a pointer), #3 (a queued rollback's source)
    # and the queued build itself; the live #6 stored nothing of its own: it serves #1.
    assert set(report.kept) == {str(built[n][0].id) for n in (1, 2, 3, 5)} | {str(five_builds["queued"].id)}
    assert stored_numbers(pipeline) == [1, 2, 3, 5]
    assert manifests(pipeline) == {str(built[n][0].id) for n in (1, 2, 3, 5)}
    blobs = keys_under(pipeline, "blobs")
    assert dropped_keys["index.html"] not in blobs and dropped_keys["app.00000004a1.js"] not in blobs
    assert shared in blobs  # named by kept manifests too
    for n in (1, 2, 3, 5):
        assert set(built[n][1].values()) <= blobs
    assert (report.manifests_deleted, report.blobs_deleted) == (1, 2)
    prefix = f"{pipeline.id}/"
    assert deleted == [  # the manifest first, then its blobs no kept manifest names
        [manifest_key(str(pipeline.id), str(dropped.id))],
        sorted(prefix + "blobs/" + dropped_keys[path] for path in ("index.html", "app.00000004a1.js")),
    ]
    # The build's history is untouched: still succeeded, no event for letting it go.
    dropped.refresh_from_db()
    assert dropped.status == BuildStatus.SUCCEEDED and dropped.stored_at is None


def test_a_repeated_run_deletes_nothing_more(pipeline, five_builds):
    retention_run(pipeline_id=pipeline.id)
    before = (keys_under(pipeline, "blobs"), manifests(pipeline), stored_numbers(pipeline))

    again = retention_run(pipeline_id=pipeline.id)

    assert (again.unstored, again.manifests_deleted, again.blobs_deleted) == ([], 0, 0)
    assert (keys_under(pipeline, "blobs"), manifests(pipeline), stored_numbers(pipeline)) == before


def test_the_live_build_stays_when_it_is_older_than_every_retained_one(pipeline, settings):
    settings.TROY_RETAINED_BUILDS = 1
    with s3_clock(LONG_AGO):
        first, first_keys = deploy(pipeline, site(1))
        deploy(pipeline, site(2))
        third, _ = deploy(pipeline, site(3))  # the newest; the pointer names it
    Pipeline.objects.filter(pk=pipeline.pk).update(live_build=first)  # test set-up: the live build alone

    retention_run(pipeline_id=pipeline.id)

    assert manifests(pipeline) == {str(first.id), str(third.id)}
    assert set(first_keys.values()) <= keys_under(pipeline, "blobs")


@pytest.mark.parametrize("protected", [False, True], ids=["open", "password-protected value"])
def test_the_build_the_edge_still_serves_stays_until_the_pointer_is_published(pipeline, settings, protected):
    """The KeyValueStore is a projection of the pointer rows: until a worker publishes the new
    value, CloudFront keeps answering from the build it last confirmed (in either value form)."""
    settings.TROY_RETAINED_BUILDS = 1
    with s3_clock(LONG_AGO):
        first, first_keys = deploy(pipeline, site(1))
        deploy(pipeline, site(2))
    credentials = credential_make(username="u", password="p") if protected else ""
    EdgePointer.objects.filter(pipeline=pipeline, kind=PointerKind.LIVE).update(
        published=pointer_value(pipeline.id, first.id, credentials)
    )  # not yet #2

    retention_run(pipeline_id=pipeline.id)

    assert str(first.id) in manifests(pipeline)
    assert set(first_keys.values()) <= keys_under(pipeline, "blobs")


# --- the grace -------------------------------------------------------------------------------------


def test_blobs_younger_than_the_grace_are_kept_and_older_unnamed_ones_deleted(pipeline, settings):
    settings.TROY_RETAINED_BUILDS = 1
    with s3_clock(LONG_AGO):
        _old, old_keys = deploy(pipeline, site(1))
        stray_old = put_blob(pipeline, b"put by a deploy that failed, long ago")
    # Put just now by a deploy that has not written its manifest yet (or crashed and will run again).
    stray_young = put_blob(pipeline, b"put a minute ago")
    newer, newer_keys = deploy(pipeline, site(2))  # #1's blobs stay long-ago; #2's are young

    report = retention_run(pipeline_id=pipeline.id)

    blobs = keys_under(pipeline, "blobs")
    assert stray_young in blobs and stray_old not in blobs
    assert old_keys["index.html"] not in blobs and set(newer_keys.values()) <= blobs
    assert report.blobs_young == 1
    # The manifest of a build let go goes whatever its age: nothing trusts it any more.
    assert manifests(pipeline) == {str(newer.id)}


def test_with_no_grace_every_unnamed_blob_goes_at_once(pipeline, settings):
    settings.TROY_RETAINED_BUILDS = 1
    settings.TROY_BLOB_GRACE_SECONDS = 0
    _first, first_keys = deploy(pipeline, site(1))
    stray = put_blob(pipeline, b"stray")
    deploy(pipeline, site(2))

    retention_run(pipeline_id=pipeline.id)

    assert not ({stray, first_keys["index.html"]} & keys_under(pipeline, "blobs"))


def test_an_orphan_manifest_goes_once_older_than_the_grace(pipeline, settings):
    """A deploy that failed after writing its manifest (never stored), or a run that crashed
    between forgetting a build and deleting its manifest."""
    with s3_clock(LONG_AGO):
        deploy(pipeline, site(1))
        crashed = request_release(pipeline)
        services.deployment_start(pipeline_id=pipeline.id)
        store(pipeline, crashed, site(2))
        services.deployment_fail(build_id=crashed.id, error="worker killed")
    young = request_release(pipeline)
    services.deployment_start(pipeline_id=pipeline.id)
    store(pipeline, young, site(3))
    services.deployment_fail(build_id=young.id, error="worker killed")

    retention_run(pipeline_id=pipeline.id)

    assert str(crashed.id) not in manifests(pipeline)
    assert str(young.id) in manifests(pipeline)  # within the grace: it may be a deploy's own


# --- beside deploys ---------------------------------------------------------------------------------


def test_nothing_changes_while_a_deploy_is_in_progress_and_the_actor_tries_again_later(pipeline, settings, broker):
    settings.TROY_RETAINED_BUILDS = 1
    with s3_clock(LONG_AGO):
        deploy(pipeline, site(1))
        deploy(pipeline, site(2))
    request_release(pipeline)
    services.deployment_start(pipeline_id=pipeline.id)  # deploying: it trusts #1 and #2's blobs
    before = (keys_under(pipeline, "blobs"), manifests(pipeline))

    tasks.prune_pipeline(str(pipeline.id))

    assert stored_numbers(pipeline) == [1, 2]
    assert (keys_under(pipeline, "blobs"), manifests(pipeline)) == before
    delayed = [Message.decode(raw) for raw in broker.queues["troy.DQ"].queue]
    assert [(m.actor_name, m.args) for m in delayed] == [("prune_pipeline", (str(pipeline.id), 1))]
    assert delayed[0].options["eta"] > 0


def test_a_busy_pipeline_is_left_to_the_next_tick_after_the_last_attempt(pipeline, broker):
    put_in_status(pipeline, S.DEPLOYING)
    assert retention_run(pipeline_id=pipeline.id).busy
    tasks.prune_pipeline(str(pipeline.id), tasks.RETENTION_BUSY_ATTEMPTS)
    assert "troy.DQ" not in broker.queues or broker.queues["troy.DQ"].qsize() == 0


def test_a_deploy_starting_while_blobs_are_listed_stops_the_deletes(pipeline, settings, monkeypatch):
    settings.TROY_RETAINED_BUILDS = 1
    with s3_clock(LONG_AGO):
        _first, first_keys = deploy(pipeline, site(1))
        deploy(pipeline, site(2))

    def a_deploy_starts(params):
        if params.get("Prefix", "").endswith("/blobs/"):
            request_release(pipeline)
            services.deployment_start(pipeline_id=pipeline.id)

    on_s3_call(monkeypatch, "ListObjectsV2", a_deploy_starts)

    report = retention_run(pipeline_id=pipeline.id)

    assert report.busy and report.blobs_deleted == 0
    assert first_keys["index.html"] in keys_under(pipeline, "blobs")  # the next run deletes it
    assert manifests(pipeline) == {str(Build.objects.get(pipeline=pipeline, number=2).id)}


def test_a_queued_rollback_to_a_retained_build_still_writes_only_the_pointer(pipeline, five_builds):
    retention_run(pipeline_id=pipeline.id)
    source = five_builds["built"][3][0]

    services.deployment_start(pipeline_id=pipeline.id)
    done = services.deployment_finish(build_id=five_builds["queued"].id, content_build_id=source.id)

    assert done.content_build_id == source.id
    assert str(source.id) in manifests(pipeline)


def test_a_build_past_retention_can_be_redeployed_and_is_stored_again(pipeline, five_builds):
    retention_run(pipeline_id=pipeline.id)
    past = five_builds["built"][4][0]
    services.build_cancel(build_id=five_builds["queued"].id, actor="alice")

    redeploy = services.build_redeploy(build_id=past.id, actor="alice")
    assert redeploy.source_build_id == past.id and redeploy.artifact_key == past.artifact_key
    services.deployment_start(pipeline_id=pipeline.id)
    store(pipeline, redeploy, site(4))  # the deploy step stores it again from its artifact
    services.deployment_finish(build_id=redeploy.id)

    redeploy.refresh_from_db()
    assert redeploy.stored_at is not None and redeploy.content_build_id is None
    assert Pipeline.objects.get(pk=pipeline.pk).live_build_id == redeploy.id


# --- what retention leaves alone ---------------------------------------------------------------------


def test_a_pipeline_in_the_old_layout_has_nothing_to_do(aws, monkeypatch):
    faults = AwsFaults().install(monkeypatch)
    old = put_in_status(PipelineFactory(repository=""), S.DEPLOYED)
    s3().put_object(Bucket=settings.TROY_LIVE_BUCKET, Key=f"{old.id}/index.html", Body=b"old layout")

    report = retention_run(pipeline_id=old.id)

    assert "old in-place layout" in report.skipped
    assert sum(faults.calls.values()) == 1  # the test's own PutObject: retention called nothing


def test_files_of_the_old_layout_under_the_same_prefix_are_not_touched(pipeline, settings):
    settings.TROY_BLOB_GRACE_SECONDS = 0
    for key in ("index.html", "blobs/logo.png", "builds/notes.txt"):
        s3().put_object(Bucket=settings.TROY_LIVE_BUCKET, Key=f"{pipeline.id}/{key}", Body=b"old layout")
    deploy(pipeline, site(1))

    retention_run(pipeline_id=pipeline.id)

    assert "logo.png" in keys_under(pipeline, "blobs") and "notes.txt" in keys_under(pipeline, "builds")


def test_a_stored_build_whose_manifest_is_missing_stops_the_blob_deletes(pipeline, settings):
    settings.TROY_BLOB_GRACE_SECONDS = 0
    build, keys = deploy(pipeline, site(1))
    stray = put_blob(pipeline, b"stray")
    s3().delete_object(Bucket=settings.TROY_LIVE_BUCKET, Key=manifest_key(str(pipeline.id), str(build.id)))

    report = retention_run(pipeline_id=pipeline.id)

    assert "missing" in report.skipped and report.blobs_deleted == 0
    assert {stray, *keys.values()} <= keys_under(pipeline, "blobs")


def test_a_pipeline_being_deleted_is_left_to_the_deletion(pipeline):
    put_in_status(pipeline, S.DELETING)
    assert "being deleted" in retention_run(pipeline_id=pipeline.id).skipped


# --- S3 errors -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "operation, error", [("ListObjectsV2", throttling), ("DeleteObjects", server_error), ("GetObject", throttling)]
)
def test_a_transient_s3_error_is_retried_into_a_finished_run(pipeline, five_builds, monkeypatch, operation, error):
    faults = AwsFaults().install(monkeypatch)
    faults.fail(operation, times=2, error=error)

    retries = run_like_dramatiq(tasks.prune_pipeline, str(pipeline.id))

    assert retries == 2
    assert stored_numbers(pipeline) == [1, 2, 3, 5]
    assert str(five_builds["built"][4][0].id) not in manifests(pipeline)
    assert five_builds["built"][4][1]["index.html"] not in keys_under(pipeline, "blobs")


def test_a_permanent_s3_error_is_not_retried_and_the_next_run_finishes(pipeline, five_builds, monkeypatch):
    faults = AwsFaults().install(monkeypatch)
    dropped, dropped_keys = five_builds["built"][4]
    faults.fail("DeleteObjects", times=1, error=access_denied)  # the manifests' delete is refused

    assert run_like_dramatiq(tasks.prune_pipeline, str(pipeline.id)) == 0

    # The build was forgotten before its manifest was deleted (stored_at set always means "the
    # manifest is there"), and no blob goes before the manifests are gone.
    assert stored_numbers(pipeline) == [1, 2, 3, 5]
    assert str(dropped.id) in manifests(pipeline)
    assert dropped_keys["index.html"] in keys_under(pipeline, "blobs")

    report = retention_run(pipeline_id=pipeline.id)  # the next tick's run: the manifest nobody owns goes

    assert (report.manifests_deleted, report.blobs_deleted) == (1, 2)
    assert str(dropped.id) not in manifests(pipeline)
    assert dropped_keys["index.html"] not in keys_under(pipeline, "blobs")


# --- the periodic tick ---------------------------------------------------------------------------------


def test_the_tick_sends_a_run_only_for_pipelines_over_the_limit(aws, broker, settings):
    settings.TROY_RETAINED_BUILDS = 2
    over, at_limit, doomed = (
        put_in_status(PipelineFactory(repository=""), S.READY_FOR_DEPLOYMENT, edge_router="v1") for _ in range(3)
    )
    for pipeline, count in ((over, 3), (at_limit, 2), (doomed, 3)):
        for n in range(count):
            deploy(pipeline, {"index.html": f"{pipeline.name} {n}".encode()})
    put_in_status(doomed, S.SCHEDULED_FOR_DELETION)
    broker.flush_all()

    tasks.prune_builds()

    sent = [Message.decode(raw) for raw in broker.queues["troy"].queue]
    assert [(m.actor_name, m.args) for m in sent] == [("prune_pipeline", (str(over.id),))]


@pytest.mark.django_db(transaction=True)
def test_the_scheduled_care_prunes_on_a_worker(aws, broker, settings):
    settings.TROY_RETAINED_BUILDS = 1
    pipeline = put_in_status(PipelineFactory(repository=""), S.READY_FOR_DEPLOYMENT, edge_router="v1")
    with s3_clock(LONG_AGO):
        _first, first_keys = deploy(pipeline, site(1))
        second, _ = deploy(pipeline, site(2))
    broker.flush_all()  # the deploy messages of the set-up: the builds are stored already
    worker = dramatiq.Worker(broker, worker_timeout=100)
    worker.start()
    try:
        tasks.prune_builds.send()
        broker.join("troy", timeout=10_000)
        worker.join()
    finally:
        worker.stop()

    assert stored_numbers(pipeline) == [2]
    assert manifests(pipeline) == {str(second.id)}
    assert first_keys["index.html"] not in keys_under(pipeline, "blobs")


# --- the lock (PostgreSQL: SQLite has no row locks) ----------------------------------------------


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_forgetting_waits_for_a_deploy_starting_under_the_lock_and_then_changes_nothing(broker, settings):
    from django.db import connection, transaction

    settings.TROY_RETAINED_BUILDS = 1
    pipeline = put_in_status(PipelineFactory(repository=""), S.READY_FOR_DEPLOYMENT, edge_router="v1")
    first = request_release(pipeline)
    services.deployment_start(pipeline_id=pipeline.id)
    services.deployment_finish(build_id=first.id)
    second = request_release(pipeline)
    services.deployment_start(pipeline_id=pipeline.id)
    services.deployment_finish(build_id=second.id)
    request_release(pipeline)  # queued: its deploy is about to start and will trust #1 and #2
    started, commit = threading.Event(), threading.Event()
    answer: list = []

    def deploy_starts() -> None:
        try:
            with transaction.atomic():
                services.deployment_start(pipeline_id=pipeline.id)
                started.set()
                commit.wait(timeout=30)
        finally:
            connection.close()

    def forget() -> None:
        try:
            answer.append(services.builds_mark_unstored(pipeline_id=pipeline.id, build_ids=[first.id], retained=1))
        finally:
            connection.close()

    deployer = threading.Thread(target=deploy_starts)
    deployer.start()
    assert started.wait(timeout=30)
    forgetter = threading.Thread(target=forget)
    forgetter.start()
    for _ in range(300):  # until the forgetter waits for the pipeline's row lock
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'")
            if cursor.fetchone()[0]:
                break
        forgetter.join(timeout=0.1)
    commit.set()
    deployer.join(timeout=30)
    forgetter.join(timeout=30)

    assert answer == [None]  # it saw the deploy that started while it waited: nothing forgotten
    assert Build.objects.get(pk=first.id).stored_at is not None
