"""A visitor reloading pages through the local edge while build 2 deploys: every answer comes from
exactly one build, and once build 2 answers, build 1 never does again."""

from __future__ import annotations

import threading

from django.conf import settings
from django.db import connection
import pytest

from deployment_service import aws
from edge.local import LocalEdge
from pipelines.choices import BuildStatus
from pipelines.selectors import edge_pointer_value
from tests.releases.helpers import release_and_deploy

pytestmark = pytest.mark.django_db(transaction=True)

PATHS = ("/", "/style.css", "/new.html")


def site(version: int, extra: int = 0) -> dict[str, str]:
    files = {
        "index.html": f'<!doctype html><link rel="stylesheet" href="/style.css"><p data-build="{version}">v{version}</p>',
        "style.css": f"/* build {version} */ body {{ color: #{version}{version}{version} }}",
        **{f"docs/page-{i}.html": f"<!doctype html><p>{version}-{i}</p>" for i in range(extra)},
    }
    if version == 2:
        files["new.html"] = "<!doctype html><p>new in build 2</p>"
    return files


def which_build(path: str, status: int, body: bytes) -> int:
    """The build an answer belongs to; fails the test when it belongs to neither."""
    answers = {}
    for version in (1, 2):
        files = site(version)
        name = "index.html" if path == "/" else path.lstrip("/")
        answers[version] = (200, files[name].encode()) if name in files else (404, None)
    for version, (expected_status, expected_body) in answers.items():
        if status == expected_status and (expected_body is None or body == expected_body):
            return version
    raise AssertionError(f"{path} answered {status} {body[:80]!r}: from no single build")


def test_every_answer_during_a_deploy_comes_from_exactly_one_build(pipeline):
    first = release_and_deploy(pipeline, site(1))
    assert first.status == BuildStatus.SUCCEEDED, first.error
    edge = LocalEdge(edge_pointer_value, aws.client("s3"), settings.TROY_LIVE_BUCKET)
    host = f"{pipeline.name}.localhost:8000"
    seen: list[tuple[str, int]] = []
    errors: list[BaseException] = []
    first_round, second_build_seen, stop = threading.Event(), threading.Event(), threading.Event()

    def reload_pages() -> None:
        try:
            while not stop.is_set():
                for path in PATHS:
                    status, _headers, body = edge.handle("GET", host, path, "", {})
                    version = which_build(path, status, body)
                    seen.append((path, version))
                    if version == 2:
                        second_build_seen.set()
                first_round.set()  # a whole round of pages answered
        except BaseException as exc:  # reported by the test thread
            errors.append(exc)
            first_round.set()
            second_build_seen.set()
        finally:
            connection.close()

    reader = threading.Thread(target=reload_pages, daemon=True)
    reader.start()
    try:
        assert first_round.wait(30)
        second = release_and_deploy(pipeline, site(2, extra=200))
        assert second.status == BuildStatus.SUCCEEDED, second.error
        assert second_build_seen.wait(30)
    finally:
        stop.set()
        reader.join(30)
    assert not errors, errors[0]
    versions = [version for _path, version in seen]
    assert versions[0] == 1 and versions[-1] == 2
    switch = versions.index(2)
    assert set(versions[switch:]) == {2}, "build 1 answered after build 2 had"
    assert {path for path, _ in seen[:switch]} == set(PATHS)  # the old build kept answering all of them
