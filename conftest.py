"""Root fixtures: users and API clients, the StubBroker and a worker, AWS (in-process moto) with
Troy's shared resources bootstrapped, and the skip-or-fail rule for tests that need services."""

from __future__ import annotations

import os

from django.conf import settings
import dramatiq
import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def needs_service(reason: str) -> None:
    """Skip on a laptop without the service; under CI=true a missing service is a failure."""
    if IN_CI:
        pytest.fail(f"CI=true and {reason}", pytrace=False)
    pytest.skip(reason)


def pytest_runtest_setup(item):
    if (
        item.get_closest_marker("postgres")
        and settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql"
    ):
        needs_service("this test needs PostgreSQL: set DATABASE_URL=postgres://postgres@127.0.0.1:5432/troy")
    if item.get_closest_marker("broker") and not settings.TROY_TEST_BROKER_URL:
        needs_service("this test needs a real broker: set DRAMATIQ_BROKER_URL=amqp://guest:guest@127.0.0.1:5672/")


def pytest_collection_modifyitems(config, items):
    """``dev.py test`` runs the end-to-end tests in a pass of their own, in one process; when a run
    puts them under pytest-xdist anyway (``-n`` given), the tests that drive the real broker and
    processes share one worker, one after another: they purge and read the same RabbitMQ queues,
    which two workers at once would take from each other."""
    for item in items:
        if item.get_closest_marker("e2e") or item.get_closest_marker("broker"):
            item.add_marker(pytest.mark.xdist_group("real-broker"))


# --- users and clients --------------------------------------------------------------------------


@pytest.fixture
def user(django_user_model):
    return django_user_model.objects.create_user(username="alice", password="alice-password")


@pytest.fixture
def other_user(django_user_model):
    return django_user_model.objects.create_user(username="mallory", password="mallory-password")


@pytest.fixture
def staff_user(django_user_model):
    return django_user_model.objects.create_user(
        username="operator", password="operator-password", is_staff=True, is_superuser=True
    )


def _client_for(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.get_or_create(user=user)[0].key}")
    return client


@pytest.fixture
def api(user) -> APIClient:
    return _client_for(user)


@pytest.fixture
def other_api(other_user) -> APIClient:
    return _client_for(other_user)


@pytest.fixture
def staff_api(staff_user) -> APIClient:
    return _client_for(staff_user)


# --- Dramatiq -----------------------------------------------------------------------------------


@pytest.fixture
def broker():
    broker = dramatiq.get_broker()
    broker.flush_all()
    yield broker
    broker.flush_all()


@pytest.fixture
def worker(broker):
    worker = dramatiq.Worker(broker, worker_timeout=100)
    worker.start()
    yield worker
    worker.stop()


# --- GitHub App ---------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def github_app_key() -> tuple[str, bytes]:
    """A throwaway GitHub App key pair (private PEM text, public PEM bytes), made once per run."""
    from tests.fakes.github_server import app_keypair

    return app_keypair()


# --- AWS ----------------------------------------------------------------------------------------


@pytest.fixture
def aws(settings):
    """In-process moto with Troy's shared resources (buckets, zone, CodeBuild project, topic)."""
    from moto import mock_aws

    from deployment_service import aws as aws_clients
    from deployment_service.bootstrap import bootstrap_aws_resources

    settings.AWS_ENDPOINT_URL = ""
    with mock_aws():
        aws_clients.reset_clients()
        report = bootstrap_aws_resources()
        settings.TROY_HOSTED_ZONE_ID = report.hosted_zone_id
        settings.TROY_SNS_TOPIC_ARNS = [report.sns_topic_arn]
        yield report
    aws_clients.reset_clients()
