"""What ``troy release`` and ``troy rollback`` print: the address a person can open (the local
edge's when the server runs one) and, for a rollback, how long it took to be live.

The rollback runs end to end against the live server; the worker's part (start the build, finish
it serving the retained build's files: a pointer write) is done by a thread through the services,
as the deploy does it."""

from __future__ import annotations

import threading

import pytest

from pipelines import services
from pipelines.choices import BuildStatus
from pipelines.models import Build
from tests.cli.conftest import wait_for
from tests.operations.edge_support import ready_pipeline, run_deploy
from troy_cli.deploys import report_build, time_to_live

pytestmark = pytest.mark.django_db(transaction=True)


def _finish_the_rollback_when_queued(pipeline, source) -> threading.Thread:
    def work():
        wait_for(lambda: Build.objects.filter(pipeline=pipeline, status=BuildStatus.QUEUED).exists(), what="redeploy")
        build = services.deployment_start(pipeline_id=pipeline.pk)
        services.deployment_finish(build_id=build.pk, content_build_id=source.pk)

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    return thread


@pytest.mark.parametrize("edge_port", [8001, 0])
def test_rollback_prints_the_address_to_open_and_how_long_it_took(troy, user, broker, settings, edge_port):
    settings.TROY_LOCAL_EDGE_PORT = edge_port
    shop = ready_pipeline("shop", owner=user)
    first = run_deploy(shop)
    run_deploy(shop)
    worker = _finish_the_rollback_when_queued(shop, first)

    rolled = troy("rollback", "shop", "1")
    worker.join(timeout=10)

    assert rolled.code == 0, rolled
    assert rolled.out == ("http://shop.localhost:8001/\n" if edge_port else f"{shop.site_url}\n")
    build = Build.objects.get(pipeline=shop, number=3)
    took = (build.finished_at - build.created_at).total_seconds()
    assert f"Build #3 is live in {took:.2f} s: a rollback (pointer only, nothing uploaded)." in rolled.err


def test_rollback_json_holds_the_address_and_the_seconds_to_live(troy, user, broker, settings):
    settings.TROY_LOCAL_EDGE_PORT = 8001
    shop = ready_pipeline("shop", owner=user)
    first = run_deploy(shop)
    run_deploy(shop)
    worker = _finish_the_rollback_when_queued(shop, first)

    rolled = troy("--json", "rollback", "shop", "1")
    worker.join(timeout=10)

    answer = rolled.json()
    assert answer["url"] == "http://shop.localhost:8001/" and answer["site_url"] == shop.site_url
    assert answer["deployed"] is True and answer["seconds_to_live"] >= 0
    assert answer["build"]["is_rollback"] is True and answer["build"]["content_build"] == str(first.pk)


def test_builds_mark_the_rollback(troy, user, broker):
    shop = ready_pipeline("shop", owner=user)
    first = run_deploy(shop)
    run_deploy(shop, rollback_of=first)

    rows = troy("builds", "shop").out.splitlines()[1:]
    assert "(rollback)" in rows[0] and "(rollback)" not in rows[1]


def test_a_release_prints_the_local_address_when_there_is_one(capsys):
    pipeline = {"site_url": "https://hello.sites.troy.test/", "local_url": "http://hello.localhost:8001/"}
    build = {"number": 4, "status": "succeeded", "trigger": "cli", "stats": {"files_uploaded": 2, "bytes_uploaded": 10}}
    assert report_build(pipeline, build, json_mode=False) == 0
    captured = capsys.readouterr()
    assert captured.out == "http://hello.localhost:8001/\n"
    assert "Build #4 is live: 2 files uploaded" in captured.err
    assert report_build({**pipeline, "local_url": ""}, build, json_mode=False) == 0
    assert capsys.readouterr().out == "https://hello.sites.troy.test/\n"


def test_time_to_live_prefers_the_servers_clock_then_the_duration_then_the_measurement():
    ended = {"created_at": "2026-12-02T01:00:00Z", "finished_at": "2026-12-02T01:00:00.250000Z"}
    assert time_to_live(ended, measured=3.0) == 0.25
    assert time_to_live({"duration_seconds": 0.5}, measured=3.0) == 0.5
    assert time_to_live({}, measured=3.0) == 3.0
