"""Probes and the self-hosted API docs."""

from django.db import connection
from django.db.utils import OperationalError
import pytest


def test_healthz_answers_without_database_or_auth(client):
    response = client.get("/healthz")
    assert response.status_code == 200 and response.json() == {"status": "ok"}


@pytest.mark.django_db
def test_readyz_tells_anonymous_callers_only_up(client):
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.mark.django_db
def test_readyz_shows_staff_each_check(client, staff_user):
    client.force_login(staff_user)
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json()["checks"] == {"database": "ok", "broker": "ok"}


@pytest.mark.django_db
def test_readyz_is_503_when_the_database_is_unreachable_and_keeps_the_reason_in_the_log(client, monkeypatch, caplog):
    def broken_cursor(*args, **kwargs):
        raise OperationalError('connection to server at "db.internal" (10.0.0.5), port 5432 failed')

    monkeypatch.setattr(connection, "cursor", broken_cursor)
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json() == {"status": "unavailable"}  # no host, port or user for strangers
    assert "db.internal" not in response.content.decode()
    assert any("db.internal" in record.getMessage() for record in caplog.records)


@pytest.mark.django_db
def test_readyz_is_503_when_the_broker_is_unreachable(client, monkeypatch, staff_user):
    """A real RabbitMQ broker object pointed at a closed port: the probe reports it, not a 500."""
    from dramatiq.brokers.rabbitmq import RabbitmqBroker

    import deployment_service.health as health

    dead = RabbitmqBroker(url="amqp://guest:guest@127.0.0.1:1/?connection_attempts=1")
    monkeypatch.setattr(health.dramatiq, "get_broker", lambda: dead)
    monkeypatch.setattr(health, "_check_database", lambda: None)
    client.force_login(staff_user)
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["database"] == "ok"
    assert response.json()["checks"]["broker"] != "ok"


def test_api_docs_load_swagger_ui_from_our_own_static_files(client):
    page = client.get("/api/docs/").content.decode()
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js" in page
    assert "cdn.jsdelivr.net" not in page
    assert client.get("/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js").status_code == 200


@pytest.mark.django_db
def test_unknown_api_and_hook_urls_answer_json_404(client):
    for path in ("/api/v1/nope/", "/api/v1/pipelines//provision/", "/hooks/nope/"):
        response = client.get(path)
        assert response.status_code == 404
        assert response.json()["code"] == "not_found"
    assert client.get("/not-an-api/").headers["Content-Type"].startswith("text/html")


def test_api_server_errors_answer_json(rf):
    from deployment_service.error_views import server_error

    response = server_error(rf.get("/api/v1/pipelines/"))
    assert response.status_code == 500 and b'"code": "server_error"' in response.content
