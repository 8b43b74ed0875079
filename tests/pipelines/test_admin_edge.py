"""The admin's view of the edge: "view site" opens the address a person can open (the local
edge's when this service runs one), and rollbacks are shown as such in the build list, the build
page and the pipeline's build inline."""

from __future__ import annotations

import pytest

from tests.operations.edge_support import ready_pipeline, run_deploy

pytestmark = pytest.mark.django_db


@pytest.fixture
def operator(client, staff_user):
    client.force_login(staff_user)
    return client


def test_view_site_opens_the_local_edge_address_when_there_is_one(operator, settings):
    pipeline = ready_pipeline("hello")
    change = f"/admin/pipelines/pipeline/{pipeline.pk}/change/"

    settings.TROY_LOCAL_EDGE_PORT = 8001
    assert 'href="http://hello.localhost:8001/"' in operator.get(change).content.decode()
    assert '<a href="http://hello.localhost:8001/" target="_blank"' in (
        operator.get("/admin/pipelines/pipeline/").content.decode()
    )

    settings.TROY_LOCAL_EDGE_PORT = 0
    page = operator.get(change).content.decode()
    assert f'href="https://hello.{settings.TROY_BASE_DOMAIN}/"' in page and "localhost" not in page


def test_rollbacks_are_shown_as_such(operator, broker):
    pipeline = ready_pipeline("shop")
    first = run_deploy(pipeline)
    run_deploy(pipeline)
    rollback = run_deploy(pipeline, rollback_of=first)

    listing = operator.get("/admin/pipelines/build/").content.decode()
    assert "rollback to #1 (pointer only, nothing uploaded)" in listing
    assert listing.count("rollback to #") == 1

    detail = operator.get(f"/admin/pipelines/build/{rollback.pk}/change/").content.decode()
    assert "rollback to #1 (pointer only, nothing uploaded)" in detail
    assert f'those stored by <a href="/admin/pipelines/build/{first.pk}/change/">build #1</a>' in detail
    assert "its own, stored" in operator.get(f"/admin/pipelines/build/{first.pk}/change/").content.decode()

    inline = operator.get(f"/admin/pipelines/pipeline/{pipeline.pk}/change/").content.decode()
    assert inline.count("rollback (pointer only, nothing uploaded)") == 1
