"""The OpenAPI schema documents these endpoints, and the docs page serves."""

import pytest

pytestmark = pytest.mark.django_db


def test_schema_documents_the_pipeline_build_and_event_endpoints(client, capsys):
    from drf_spectacular.drainage import GENERATOR_STATS

    GENERATOR_STATS.reset()  # warnings print once per process; make this generation print them
    response = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    schema = response.json()
    paths = schema["paths"]
    for path, methods in {
        "/api/v1/pipelines/": {"get", "post"},
        "/api/v1/pipelines/{id}/": {"get", "patch", "delete"},
        "/api/v1/pipelines/{id}/provision/": {"post"},
        "/api/v1/pipelines/{id}/deploy/": {"post"},
        "/api/v1/pipelines/{id}/builds/": {"get"},
        "/api/v1/pipelines/{pipeline_id}/events/": {"get"},
        "/api/v1/builds/{id}/": {"get"},
        "/api/v1/builds/{id}/cancel/": {"post"},
        "/api/v1/builds/{id}/redeploy/": {"post"},
        "/api/v1/events/": {"get"},
    }.items():
        assert methods <= set(paths[path]), path
    assert set(paths["/api/v1/pipelines/{id}/provision/"]["post"]["responses"]) >= {"202", "409"}
    assert set(paths["/api/v1/pipelines/{id}/deploy/"]["post"]["responses"]) >= {"202", "400", "409"}
    assert paths["/api/v1/pipelines/"]["post"]["responses"].keys() >= {"201", "400"}
    status_param = next(p for p in paths["/api/v1/pipelines/"]["get"]["parameters"] if p["name"] == "status")
    assert "deployed" in status_param["schema"]["items"]["enum"]
    # no schema warnings from these endpoints
    warnings = capsys.readouterr().err
    for module in (
        "pipelines/api",
        "pipelines/api/event_views",
        "PipelineViewSet",
        "BuildViewSet",
        "EventViewSet",
        "PipelineEventList",
    ):
        assert module not in warnings


def test_swagger_ui_serves(client):
    response = client.get("/api/docs/")
    assert response.status_code == 200 and b"swagger" in response.content.lower()
