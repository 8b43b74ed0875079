"""POST /hooks/github/: signature, shape, dedupe; what is stored and what is enqueued."""

from __future__ import annotations

from django.test import Client
from django_dramatiq.management.commands.rundramatiq import Command as RunDramatiq
import dramatiq
import pytest

from hooks.github import github_signature, github_signature_valid
from hooks.models import GithubDelivery
from tests.hooks.github_helpers import SECRET, SHA, URL, deliver, push_payload

pytestmark = pytest.mark.django_db

VECTOR = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"


@pytest.fixture
def secret(settings):
    settings.GITHUB_WEBHOOK_SECRET = SECRET
    return SECRET


@pytest.fixture
def client():
    return Client(enforce_csrf_checks=True)  # GitHub has no CSRF token; the hook must not need one


def queued_messages(broker) -> list[dramatiq.Message]:
    queue = broker.queues.get("troy")
    return [dramatiq.Message.decode(raw) for raw in list(queue.queue)] if queue else []


# --- the signature ----------------------------------------------------------------------------------


def test_hmac_test_vector():
    assert github_signature(secret=SECRET, body=b"Hello, World!") == VECTOR
    assert github_signature_valid(secret=SECRET, body=b"Hello, World!", signature=VECTOR)
    assert not github_signature_valid(secret=SECRET, body=b"Hello, World?", signature=VECTOR)
    assert not github_signature_valid(secret=SECRET, body=b"Hello, World!", signature=VECTOR[:-1] + "f")
    assert not github_signature_valid(
        secret="", body=b"Hello, World!", signature=github_signature(secret="", body=b"Hello, World!")
    )


def test_the_vector_passes_the_door_over_the_raw_body_then_the_body_is_refused(client, secret, broker):
    response = deliver(client, b"Hello, World!", signature=VECTOR)

    assert response.status_code == 400  # signature accepted; "Hello, World!" is not a delivery
    assert response.json()["code"] == "invalid_delivery"
    assert not GithubDelivery.objects.exists()


@pytest.mark.parametrize(
    ("signature", "status"),
    [
        (None, 401),
        ("", 401),
        ("sha256=" + "0" * 64, 403),
        (github_signature(secret="another secret", body=b"{}"), 403),
        ("sha1=2dca3c2f1f3a6a4f2e1c7d0b6e0f5b4b9e9d0b1a", 403),
        ("garbage", 403),
    ],
)
def test_missing_or_forged_signatures_are_refused_and_nothing_is_stored(client, secret, broker, signature, status):
    response = deliver(client, push_payload(), signature=signature)

    assert response.status_code == status
    assert response.json()["code"] == "invalid_signature"
    assert not GithubDelivery.objects.exists()
    assert queued_messages(broker) == []


def test_a_body_changed_after_signing_is_refused(client, secret):
    body = b'{"zen": "Keep it logically awesome."}'
    response = deliver(
        client, body.replace(b"awesome", b"awful"), signature=github_signature(secret=SECRET, body=body), event="ping"
    )
    assert response.status_code == 403


def test_without_a_configured_secret_every_delivery_is_refused(client, settings):
    settings.GITHUB_WEBHOOK_SECRET = ""

    response = deliver(client, push_payload(), secret="")

    assert response.status_code == 503
    assert response.json()["code"] == "webhook_not_configured"
    assert not GithubDelivery.objects.exists()


# --- shape --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"\xff\xfe",
        b"[]",
        b'"push"',
        push_payload(after="main"),
        push_payload(after=None),
        push_payload(ref=None),
        push_payload(repository={"id": 1}),
        push_payload(repository="octo-org/site"),
        push_payload(installation={"id": "12"}),
    ],
)
def test_malformed_deliveries_are_refused_and_nothing_is_stored(client, secret, broker, body):
    response = deliver(client, body)

    assert response.status_code == 400
    assert response.json()["code"] == "invalid_delivery"
    assert not GithubDelivery.objects.exists()
    assert queued_messages(broker) == []


@pytest.mark.parametrize("missing", ["X-GitHub-Event", "X-GitHub-Delivery"])
def test_a_delivery_without_its_headers_is_refused(client, secret, missing):
    response = deliver(client, push_payload(), **{missing: None})
    assert response.status_code == 400
    assert not GithubDelivery.objects.exists()


def test_only_post(client, secret):
    assert client.get(URL).status_code == 405


# --- what is stored -------------------------------------------------------------------------------


def test_ping_is_answered_and_not_stored(client, secret):
    response = deliver(client, {"zen": "Design for failure.", "hook_id": 1}, event="ping")

    assert response.status_code == 200
    assert response.json()["status"] == "pong"
    assert not GithubDelivery.objects.exists()


def test_a_push_is_stored_and_its_handling_enqueued_after_commit(
    client, secret, broker, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = deliver(client, push_payload(), delivery_id="72d3162e-cc78-11e3-81ab-4c9367dc0958")

    assert response.status_code == 202
    assert response.json() == {"status": "queued", "delivery": "72d3162e-cc78-11e3-81ab-4c9367dc0958"}
    delivery = GithubDelivery.objects.get()
    assert (delivery.event, delivery.payload["after"], delivery.processed_at) == ("push", SHA, None)
    [message] = queued_messages(broker)
    assert (message.actor_name, message.args) == ("handle_github_delivery", (delivery.pk,))


def test_a_repeated_delivery_adds_nothing(client, secret, broker, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        first = deliver(client, push_payload(), delivery_id="d-1")
        again = deliver(client, push_payload(), delivery_id="d-1")

    assert first.status_code == 202
    assert again.status_code == 200 and again.json()["status"] == "duplicate"
    assert GithubDelivery.objects.count() == 1
    assert len(queued_messages(broker)) == 1


def test_other_events_are_kept_as_ignored_and_start_nothing(client, secret, broker, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = deliver(client, {"action": "opened", "issue": {"number": 1}}, event="issues")

    assert response.status_code == 200 and response.json()["status"] == "ignored"
    delivery = GithubDelivery.objects.get()
    assert delivery.processed_at is not None and "issues" in delivery.result
    assert queued_messages(broker) == []


def test_the_worker_discovers_the_github_actor():
    assert "hooks.github_tasks" in RunDramatiq().discover_tasks_modules()
