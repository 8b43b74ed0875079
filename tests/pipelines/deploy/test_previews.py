"""Previews (issue 10, the subset built so far): a release to a preview deploys through the real
deploy step beside production, the local edge serves preview hosts and build permalinks, promote
is pointer-only, the names and labels are validated, retention keeps what previews point at and
lets permalinks go with their builds."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils import timezone
import pytest

from deployment_service import aws
from edge.local import LocalEdge
from events.models import Event
from pipelines import services
from pipelines.checks import pipeline_names_with_separator
from pipelines.choices import BuildStatus, BuildTrigger, PointerKind
from pipelines.choices import PipelineStatus as S
from pipelines.flows.deploy import deploy_build_run
from pipelines.models import Build, EdgePointer, Pipeline, Preview, permalink_host, preview_host, preview_host_label
from pipelines.selectors import edge_pointer_value
from releases import services as release_services
from releases.storage import release_store_run
from tests.factories import PipelineFactory
from tests.form_client import FormClient
from tests.pipelines.deploy.support import PAGE
from tests.releases.helpers import release_and_deploy, run_queued, upload, zip_bytes

pytestmark = pytest.mark.django_db

V1 = {"index.html": PAGE.format("v1"), "a.txt": "same"}
V2 = {"index.html": PAGE.format("v2"), "a.txt": "same"}
V3 = {"index.html": PAGE.format("v3"), "a.txt": "same"}


def release_to_preview(pipeline: Pipeline, label: str, files: dict[str, str]) -> Build:
    """Upload → store → the preview's queue starts it → the real deploy step, as the actors would."""
    release, build = release_services.release_upload(
        pipeline=pipeline, upload=upload(zip_bytes(files)), preview=label, actor="test"
    )
    assert build is not None and build.preview is not None
    release_store_run(release_id=release.id)
    started = services.preview_deployment_start(preview_id=build.preview.id)
    assert started is not None and started.pk == build.pk
    deploy_build_run(build_id=started.id)
    return Build.objects.get(pk=started.pk)


def local_edge() -> LocalEdge:
    return LocalEdge(edge_pointer_value, aws.client("s3"), settings.TROY_LIVE_BUCKET)


def get(host: str, path: str = "/") -> tuple[int, bytes]:
    status, _headers, body = local_edge().handle("GET", host, path, "", {"accept": "text/html"})
    return status, b"".join(body) if not isinstance(body, bytes) else body


def test_a_release_to_a_preview_deploys_beside_production_and_never_touches_it(pipeline):
    live = release_and_deploy(pipeline, V1)
    status_before = Pipeline.objects.get(pk=pipeline.pk).status
    assert status_before == S.DEPLOYED

    build = release_to_preview(pipeline, "feature-x", V2)

    assert build.status == BuildStatus.SUCCEEDED, build.error
    assert build.stored_at is not None
    pipeline.refresh_from_db()
    assert pipeline.status == status_before and pipeline.live_build_id == live.id
    preview = Preview.objects.get(pipeline=pipeline, label="feature-x")
    assert preview.build_id == build.id and preview.last_deployed_at == build.finished_at
    assert preview.host == f"feature-x--{pipeline.name}.{settings.TROY_BASE_DOMAIN}"
    pointers = {p.host: (p.kind, p.build_id) for p in EdgePointer.objects.filter(pipeline=pipeline)}
    assert pointers == {
        pipeline.domain: (PointerKind.LIVE, live.id),
        preview.host: (PointerKind.PREVIEW, build.id),
        permalink_host(number=live.number, name=pipeline.name): (PointerKind.PERMALINK, live.id),
        permalink_host(number=build.number, name=pipeline.name): (PointerKind.PERMALINK, build.id),
    }
    events = list(Event.objects.filter(pipeline_id=pipeline.id, transition__startswith="preview_").order_by("id"))
    assert [e.transition for e in events] == ["preview_queue", "preview_start", "preview_finish"]
    assert all(e.from_status == e.to_status == S.DEPLOYED for e in events)
    assert "feature-x" in events[-1].message and preview.url in events[-1].message


def test_the_local_edge_serves_previews_and_permalinks_and_404s_unknown_labels(pipeline):
    live = release_and_deploy(pipeline, V1)
    preview_build = release_to_preview(pipeline, "feature-x", V2)
    name = pipeline.name

    assert get(f"{name}.localhost:8080")[1].count(b"v1") == 1
    status, body = get(f"feature-x--{name}.localhost:8080")
    assert status == 200 and b"v2" in body
    status, body = get(f"b{live.number}--{name}.localhost")
    assert status == 200 and b"v1" in body
    status, body = get(f"b{preview_build.number}--{name}.{settings.TROY_BASE_DOMAIN}")
    assert status == 200 and b"v2" in body
    assert get(f"nope--{name}.localhost")[0] == 404
    assert get(f"b99--{name}.localhost")[0] == 404


def test_a_preview_queue_is_newest_wins_and_leaves_the_pipeline_status_alone(pipeline):
    release_and_deploy(pipeline, V1)
    builds = [
        release_services.release_upload(pipeline=pipeline, upload=upload(zip_bytes(v)), preview="next", actor="t")[1]
        for v in (V2, V3)
    ]
    assert Pipeline.objects.get(pk=pipeline.pk).status == S.DEPLOYED  # nothing queued in production
    started = services.preview_deployment_start(preview_id=builds[0].preview_id)
    assert started is not None and started.pk == builds[1].pk
    older = Build.objects.get(pk=builds[0].pk)
    assert older.status == BuildStatus.SUPERSEDED and f"#{started.number}" in older.error
    # A second start while one runs starts nothing (the running one's end sends it again).
    assert services.preview_deployment_start(preview_id=builds[0].preview_id) is None
    assert services.deployment_start(pipeline_id=pipeline.id) is None  # production has nothing queued


def test_a_failed_preview_build_fails_only_itself(pipeline):
    release_and_deploy(pipeline, V1)
    _release, build = release_services.release_upload(
        pipeline=pipeline, upload=upload(zip_bytes(V2)), preview="broken", actor="t"
    )
    services.preview_deployment_start(preview_id=build.preview_id)
    services.deployment_fail(build_id=build.id, error="boom")
    assert Build.objects.get(pk=build.pk).status == BuildStatus.FAILED
    assert Pipeline.objects.get(pk=pipeline.pk).status == S.DEPLOYED
    assert Event.objects.filter(pipeline_id=pipeline.id, transition="preview_fail", message__contains="boom").exists()


def test_promote_is_a_pointer_only_production_build(pipeline, api, s3_requests):
    release_and_deploy(pipeline, V1)
    preview_build = release_to_preview(pipeline, "feature-x", V2)
    s3_requests.clear()

    answer = api.post(f"/api/v1/pipelines/{pipeline.id}/previews/feature-x/promote/")
    assert answer.status_code == 202, answer.json()
    promoted = run_queued(Pipeline.objects.get(pk=pipeline.pk))

    assert str(promoted.id) == answer.json()["id"] and promoted.trigger == BuildTrigger.PROMOTE
    assert promoted.status == BuildStatus.SUCCEEDED, promoted.error
    assert promoted.content_build_id == preview_build.id and promoted.preview_id is None
    assert s3_requests.writes() == []
    assert EdgePointer.objects.get(host=pipeline.domain).build_id == preview_build.id
    assert Pipeline.objects.get(pk=pipeline.pk).live_build_id == promoted.id
    event = Event.objects.filter(pipeline_id=pipeline.id, transition="finish_deployment").order_by("-id").first()
    assert "promoted preview feature-x" in event.message and "pointer only" in event.message
    assert b"v2" in get(f"{pipeline.name}.localhost")[1]


def test_promoting_a_preview_with_nothing_live_is_409(pipeline, api):
    _release, _build = release_services.release_upload(
        pipeline=pipeline, upload=upload(zip_bytes(V1)), preview="empty", actor="t"
    )
    answer = api.post(f"/api/v1/pipelines/{pipeline.id}/previews/empty/promote/")
    assert answer.status_code == 409 and answer.json()["code"] == "nothing_to_promote"
    assert api.post(f"/api/v1/pipelines/{pipeline.id}/previews/nope/promote/").status_code == 404


def test_the_api_lists_and_deletes_previews(pipeline, api):
    build = release_to_preview(pipeline, "feature-x", V2)
    answer = api.get(f"/api/v1/pipelines/{pipeline.id}/previews/")
    assert answer.status_code == 200
    (row,) = answer.json()["results"]
    host = f"feature-x--{pipeline.name}.{settings.TROY_BASE_DOMAIN}"
    assert row["label"] == "feature-x" and row["url"] == f"https://{host}/" and row["host"] == host
    assert row["build"] == str(build.id) and row["build_number"] == build.number
    assert row["local_url"] == "" and row["last_deployed_at"] is not None
    assert api.get(f"/api/v1/builds/{build.id}/").json()["preview"] == build.preview_id

    assert api.delete(f"/api/v1/pipelines/{pipeline.id}/previews/feature-x/").status_code == 204
    assert not Preview.objects.filter(pipeline=pipeline).exists()
    assert not EdgePointer.objects.filter(host=host).exists()
    assert Build.objects.get(pk=build.pk).stored_at is not None  # its builds stay until retention
    assert get(f"feature-x--{pipeline.name}.localhost")[0] == 404
    assert Event.objects.filter(pipeline_id=pipeline.id, transition="preview_delete").exists()
    assert api.delete(f"/api/v1/pipelines/{pipeline.id}/previews/feature-x/").status_code == 404


def test_the_local_url_is_shown_when_a_local_edge_runs(pipeline, api, settings):
    settings.TROY_LOCAL_EDGE_PORT = 8081
    release_to_preview(pipeline, "feature-x", V2)
    (row,) = api.get(f"/api/v1/pipelines/{pipeline.id}/previews/").json()["results"]
    assert row["local_url"] == f"http://feature-x--{pipeline.name}.localhost:8081/"


@pytest.mark.parametrize("label", ["b12", "bad--label", "-x", "x-", "a" * 64, "under_score", "dot.ted"])
def test_invalid_preview_labels_are_400_before_anything_is_stored(pipeline, api, label):
    answer = api.post(
        f"/api/v1/pipelines/{pipeline.id}/releases/",
        {"file": upload(zip_bytes(V1)), "preview": label},
        format="multipart",
    )
    assert answer.status_code == 400, answer.json()
    body = answer.json()
    assert body["code"] == "invalid" and body["error_codes"]["preview"] == ["invalid_preview_label"], body
    assert not Preview.objects.exists() and not Build.objects.exists()


def test_a_release_to_a_preview_over_the_api(pipeline, api):
    answer = api.post(
        f"/api/v1/pipelines/{pipeline.id}/releases/",
        {"file": upload(zip_bytes(V1)), "preview": "Feature-X"},
        format="multipart",
    )
    assert answer.status_code == 201, answer.json()
    build = Build.objects.get(pk=answer.json()["build"]["id"])
    assert build.preview is not None and build.preview.label == "feature-x"
    assert Pipeline.objects.get(pk=pipeline.pk).status == S.READY_FOR_DEPLOYMENT


def test_long_preview_hosts_are_shortened_stably_to_a_dns_label():
    name = "a-rather-long-pipeline-name-for-a-docs-site"
    label = "feature-with-a-very-long-branch-name-indeed"
    first = preview_host_label(label=label, name=name)
    assert len(first) <= 63 and first.endswith(f"--{name}")
    assert first == preview_host_label(label=label, name=name)
    assert first != preview_host_label(label=label + "-2", name=name)
    assert preview_host_label(label="x", name=name) == f"x--{name}"
    longest = preview_host_label(label=label, name="n" * 63)
    assert len(longest) <= 63 and "--" in longest
    assert preview_host(label="x", name="site") == f"x--site.{settings.TROY_BASE_DOMAIN}"


def test_new_pipeline_names_may_not_contain_the_separator(api):
    answer = api.post("/api/v1/pipelines/", {"name": "my--site"}, format="json")
    assert answer.status_code == 400
    assert answer.json()["error_codes"]["name"] == ["name_reserved_separator"], answer.json()
    with pytest.raises(ValidationError):
        services.pipeline_create(owner=PipelineFactory().owner, name="x--y", actor="t")


def test_the_system_check_lists_existing_names_with_the_separator(user):
    assert pipeline_names_with_separator(databases=["default"]) == []
    Pipeline.objects.create(owner=user, name="old--site")
    (warning,) = pipeline_names_with_separator(databases=["default"])
    assert warning.id == "pipelines.W001" and "old--site" in warning.msg
    assert pipeline_names_with_separator(databases=None) == []


def test_retention_keeps_what_previews_point_at_and_drops_permalinks_with_their_builds(pipeline):
    first = release_and_deploy(pipeline, V1)
    preview_build = release_to_preview(pipeline, "feature-x", V2)
    second = release_and_deploy(pipeline, V3)
    third = release_and_deploy(pipeline, {**V3, "b.txt": "more"})
    stored = services.build_ids_stored(pipeline_id=pipeline.id)

    cleared = services.builds_mark_unstored(pipeline_id=pipeline.id, build_ids=stored, retained=1)

    assert cleared is not None and set(cleared) == {first.id, second.id}
    kept = set(Build.objects.filter(pipeline=pipeline, stored_at__isnull=False).values_list("id", flat=True))
    assert kept == {preview_build.id, third.id}
    permalinks = set(
        EdgePointer.objects.filter(pipeline=pipeline, kind=PointerKind.PERMALINK).values_list("build_id", flat=True)
    )
    assert permalinks == {preview_build.id, third.id}
    assert get(f"b{first.number}--{pipeline.name}.localhost")[0] == 404


def test_permalink_pointers_alone_do_not_keep_a_build(pipeline):
    first = release_and_deploy(pipeline, V1)
    release_and_deploy(pipeline, V2)
    assert EdgePointer.objects.filter(kind=PointerKind.PERMALINK, build=first).exists()
    assert first.id not in services.build_ids_retained(pipeline_id=pipeline.id, retained=1)


def test_the_admin_shows_previews_and_deletes_them_through_the_service(pipeline, staff_user):
    build = release_to_preview(pipeline, "feature-x", V2)
    preview = Preview.objects.get(pipeline=pipeline)
    client = FormClient()  # forms without a file field post urlencoded, as browsers do
    client.force_login(staff_user)

    page = client.get(f"/admin/pipelines/pipeline/{pipeline.pk}/change/")
    assert page.status_code == 200 and preview.url in page.content.decode()
    builds = client.get("/admin/pipelines/build/")
    assert builds.status_code == 200 and "feature-x" in builds.content.decode()
    listing = client.get("/admin/pipelines/preview/")
    assert listing.status_code == 200 and preview.url in listing.content.decode()

    answer = client.post(
        "/admin/pipelines/preview/", {"action": "delete_previews", "_selected_action": [preview.pk]}, follow=True
    )
    assert answer.status_code == 200 and "deleted" in answer.content.decode()
    assert not Preview.objects.exists() and not EdgePointer.objects.filter(host=preview.host).exists()
    assert Build.objects.filter(pk=build.pk).exists()


def test_a_preview_build_runs_beside_a_production_deploy_and_the_reaper_fails_only_production(pipeline):
    release_and_deploy(pipeline, V1)
    _r, production = release_services.release_upload(
        pipeline=pipeline, upload=upload(zip_bytes(V2)), deploy=True, actor="t"
    )
    _r, preview_build = release_services.release_upload(
        pipeline=pipeline, upload=upload(zip_bytes(V3)), preview="side", actor="t"
    )
    assert services.deployment_start(pipeline_id=pipeline.id).pk == production.pk
    assert services.preview_deployment_start(preview_id=preview_build.preview_id).pk == preview_build.pk
    assert Build.objects.filter(pipeline=pipeline, status=BuildStatus.RUNNING).count() == 2

    services.pipelines_reap_stuck(now=timezone.now() + timedelta(days=1))

    assert Build.objects.get(pk=production.pk).status == BuildStatus.FAILED
    assert Build.objects.get(pk=preview_build.pk).status == BuildStatus.RUNNING
    assert Pipeline.objects.get(pk=pipeline.pk).status == S.FAILED_TO_DEPLOY
