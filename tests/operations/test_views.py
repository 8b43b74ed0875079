"""The service's own ``/`` page and the ``/api/v1/`` root."""

from __future__ import annotations

import pytest

from pipelines.choices import PipelineStatus
from tests.factories import PipelineFactory, put_in_status

pytestmark = pytest.mark.django_db


def test_the_home_page_links_the_api_docs_and_the_admin_and_asks_a_stranger_to_log_in(client):
    response = client.get("/")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/html")
    page = response.content.decode()
    assert 'href="/api/docs/"' in page and 'href="/admin/"' in page and 'href="/api/v1/"' in page
    assert 'href="/admin/login/?next=/"' in page


def test_the_home_page_lists_your_sites_at_their_local_address_when_a_local_edge_runs(client, user, settings):
    settings.TROY_LOCAL_EDGE_PORT = 8001
    put_in_status(PipelineFactory(name="hello", owner=user), PipelineStatus.READY_FOR_DEPLOYMENT)
    PipelineFactory(name="someone-elses")
    client.force_login(user)

    page = client.get("/").content.decode()

    assert '<a href="http://hello.localhost:8001/">' in page
    assert "someone-elses" not in page
    assert "nothing live yet" in page


def test_without_a_local_edge_the_home_page_links_the_https_address(client, staff_user, settings):
    settings.TROY_LOCAL_EDGE_PORT = 0
    PipelineFactory(name="shop")
    client.force_login(staff_user)

    page = client.get("/").content.decode()

    assert f'<a href="https://shop.{settings.TROY_BASE_DOMAIN}/">' in page
    assert ".localhost" not in page


def test_the_api_root_lists_the_resources_as_json_without_a_token(client):
    response = client.get("/api/v1/", HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    assert response.json() == {
        "pipelines": "http://testserver/api/v1/pipelines/",
        "builds": "http://testserver/api/v1/builds/",
        "releases": "http://testserver/api/v1/pipelines/{pipeline_id}/releases/",
        "events": "http://testserver/api/v1/events/",
        "github_install": "http://testserver/api/v1/github/install/",
        "schema": "http://testserver/api/schema/",
        "docs": "http://testserver/api/docs/",
    }


def test_the_api_root_is_in_the_schema(client):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    assert set(schema["paths"]["/api/v1/"]) == {"get"}
