"""``POST /hooks/sns/``: signed deliveries (versions 1 and 2) are stored once and queued; forged,
stale, unknown-topic, badly hosted or malformed ones get 4xx and nothing is stored."""

from __future__ import annotations

from datetime import timedelta
import json
import os
from pathlib import Path
import subprocess
import sys

import pytest
import responses

from hooks.models import SnsDelivery
from hooks.sns import certificate_cache_clear
from tests.hooks.sns_support import (
    CERT_URL,
    TOPIC,
    Signer,
    notification,
    now_stamp,
    post,
    subscription_confirmation,
    unsubscribe_confirmation,
)
from tests.pipelines.codebuild_support import fixture, sent

pytestmark = pytest.mark.django_db

EVENT = fixture("codebuild-build-state-change.json")


@pytest.fixture(scope="module")
def signer() -> Signer:
    return Signer()


@pytest.fixture(autouse=True)
def topics(settings):
    settings.TROY_SNS_TOPIC_ARNS = [TOPIC]
    settings.TROY_SNS_VERIFY_SIGNATURES = True


@pytest.fixture
def cert_host(signer):
    """SNS's certificate host, stubbed at the HTTP level; any other URL fails to connect."""
    certificate_cache_clear()
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.get(CERT_URL, body=signer.pem, status=200)
        yield mock
    certificate_cache_clear()


@pytest.fixture
def deliver(client, django_capture_on_commit_callbacks):
    def run(message, **headers):
        with django_capture_on_commit_callbacks(execute=True):
            return post(client, message, **headers)

    return run


def assert_refused(response, status: int, code: str) -> None:
    assert response.status_code == status, response.content
    assert response.json()["code"] == code
    assert SnsDelivery.objects.count() == 0


# --- accepted -------------------------------------------------------------------------------------


@pytest.mark.parametrize("version", ["1", "2"])
def test_a_signed_notification_is_stored_once_and_queued(deliver, cert_host, signer, broker, version):
    message = signer.sign(notification(EVENT), version=version)

    response = deliver(message)

    assert response.status_code == 200
    assert response.json() == {"status": "queued", "message_id": message["MessageId"]}
    delivery = SnsDelivery.objects.get()
    assert (delivery.message_id, delivery.message_type, delivery.topic_arn) == (
        message["MessageId"],
        "Notification",
        TOPIC,
    )
    assert json.loads(delivery.body["Message"]) == EVENT
    assert delivery.processed_at is None
    assert sent(broker, "handle_sns_delivery") == [(delivery.pk,)]


def test_a_notification_with_a_subject_signs_the_subject_too(deliver, cert_host, signer, broker):
    message = signer.sign(notification(EVENT, subject="CodeBuild"))
    assert deliver(message).status_code == 200
    assert SnsDelivery.objects.get().subject == "CodeBuild"

    tampered = dict(signer.sign(notification(EVENT, subject="CodeBuild")), Subject="Something else")
    assert deliver(tampered).status_code == 403
    assert SnsDelivery.objects.count() == 1


@pytest.mark.parametrize("version", ["1", "2"])
def test_a_signed_subscription_confirmation_is_stored_and_queued_for_a_worker(
    deliver, cert_host, signer, broker, version
):
    message = signer.sign(subscription_confirmation(), version=version)

    response = deliver(message)

    assert response.status_code == 200 and response.json()["status"] == "queued"
    delivery = SnsDelivery.objects.get()
    assert delivery.message_type == "SubscriptionConfirmation" and delivery.body["Token"] == message["Token"]
    assert sent(broker, "handle_sns_delivery") == [(delivery.pk,)]


def test_an_unsubscribe_confirmation_is_stored_and_logged_only(deliver, cert_host, signer, broker, caplog):
    response = deliver(signer.sign(unsubscribe_confirmation()))
    assert response.status_code == 200 and response.json()["status"] == "logged"
    delivery = SnsDelivery.objects.get()
    assert delivery.processed_at is not None and delivery.result.startswith("logged")
    assert sent(broker, "handle_sns_delivery") == []
    assert "unsubscribed" in caplog.text


def test_a_duplicate_message_id_is_answered_200_and_nothing_new_happens(deliver, cert_host, signer, broker):
    message = signer.sign(notification(EVENT))
    assert deliver(message).status_code == 200

    again = deliver(message)

    assert again.status_code == 200 and again.json()["status"] == "duplicate"
    assert SnsDelivery.objects.count() == 1
    assert len(sent(broker, "handle_sns_delivery")) == 1


def test_the_certificate_is_fetched_once_and_then_cached(deliver, cert_host, signer, broker):
    for _ in range(3):
        assert deliver(signer.sign(notification(EVENT))).status_code == 200
    assert len(cert_host.calls) == 1
    request = cert_host.calls[0].request
    assert request.url == CERT_URL


# --- refused: signature and certificate -----------------------------------------------------------


def test_a_forged_signature_is_refused(deliver, cert_host):
    forger = Signer()  # a different key than the certificate's
    assert_refused(deliver(forger.sign(notification(EVENT))), 403, "invalid_signature")


def test_a_message_changed_after_signing_is_refused(deliver, cert_host, signer):
    message = signer.sign(notification(EVENT))
    message["Message"] = message["Message"].replace("SUCCEEDED", "FAILED")
    assert_refused(deliver(message), 403, "invalid_signature")


def test_a_version_1_signature_presented_as_version_2_is_refused(deliver, cert_host, signer):
    message = signer.sign(notification(EVENT), version="1")
    message["SignatureVersion"] = "2"
    assert_refused(deliver(message), 403, "invalid_signature")


def test_a_signature_that_is_not_base64_is_refused(deliver, cert_host, signer):
    message = dict(signer.sign(notification(EVENT)), Signature="not base64 !!")
    assert_refused(deliver(message), 403, "invalid_signature")


@pytest.mark.parametrize(
    "url",
    [
        "http://sns.us-east-1.amazonaws.com/SimpleNotificationService-0000.pem",
        "https://evil.example.com/SimpleNotificationService-0000.pem",
        "https://sns.us-east-1.amazonaws.com.evil.com/SimpleNotificationService-0000.pem",
        "https://bucket.s3.amazonaws.com/SimpleNotificationService-0000.pem",
        "https://s3.amazonaws.com/sns.us-east-1.amazonaws.com/cert.pem",
        "https://sns.us-east-1.amazonaws.com@evil.com/SimpleNotificationService-0000.pem",
        "https://user:pass@sns.us-east-1.amazonaws.com/SimpleNotificationService-0000.pem",
        "https://sns.us-east-1.amazonaws.com:8443/SimpleNotificationService-0000.pem",
        "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-0000.pem?x=1",
        "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-0000.pem#frag",
        "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-0000.txt",
        "https://sns.amazonaws.com/SimpleNotificationService-0000.pem",
        "https://SNS.us-east-1.amazonaws.com/SimpleNotificationService-0000.pem",
        "ftp://sns.us-east-1.amazonaws.com/SimpleNotificationService-0000.pem",
    ],
)
def test_a_signing_certificate_url_off_sns_is_refused_without_fetching(deliver, cert_host, signer, url):
    message = signer.sign(notification(EVENT, cert_url=url))
    assert_refused(deliver(message), 403, "invalid_signing_cert_url")
    assert len(cert_host.calls) == 0


@pytest.mark.parametrize(
    "url",
    [
        "https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-abc.pem",
        "https://sns.cn-north-1.amazonaws.com.cn/SimpleNotificationService-abc.pem",
        "https://sns.us-gov-west-1.amazonaws.com/SimpleNotificationService-abc.pem",
        "https://sns.us-east-1.amazonaws.com:443/SimpleNotificationService-abc.pem",
    ],
)
def test_sns_hosts_of_every_region_are_accepted(deliver, cert_host, signer, url):
    cert_host.get(url, body=signer.pem)
    assert deliver(signer.sign(notification(EVENT, cert_url=url))).status_code == 200


def test_a_redirect_from_the_certificate_url_is_not_followed(deliver, cert_host, signer):
    url = "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-redirect.pem"
    cert_host.get(url, status=302, headers={"Location": CERT_URL})
    assert_refused(deliver(signer.sign(notification(EVENT, cert_url=url))), 403, "invalid_certificate")
    assert [c.request.url for c in cert_host.calls] == [url]


def test_a_certificate_host_that_is_down_gets_a_retryable_answer(deliver, cert_host, signer):
    url = "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-down.pem"
    cert_host.get(url, status=503)
    assert_refused(deliver(signer.sign(notification(EVENT, cert_url=url))), 503, "certificate_unavailable")


def test_something_that_is_not_a_certificate_is_refused(deliver, cert_host, signer):
    url = "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-junk.pem"
    cert_host.get(url, body=b"-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----\n")
    assert_refused(deliver(signer.sign(notification(EVENT, cert_url=url))), 403, "invalid_certificate")


def test_an_oversized_certificate_answer_is_refused(deliver, cert_host, signer):
    url = "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-huge.pem"
    cert_host.get(url, body=b"A" * (65 * 1024))
    assert_refused(deliver(signer.sign(notification(EVENT, cert_url=url))), 403, "invalid_certificate")


# --- refused: topic, time, shape ------------------------------------------------------------------


def test_an_unknown_topic_is_refused(deliver, cert_host, signer):
    message = signer.sign(notification(EVENT, topic="arn:aws:sns:us-east-1:999999999999:someone-elses"))
    assert_refused(deliver(message), 403, "unknown_topic")
    assert len(cert_host.calls) == 0


@pytest.mark.parametrize("delta", [timedelta(minutes=-61), timedelta(days=-400), timedelta(minutes=10)])
def test_an_old_or_future_timestamp_is_refused(deliver, cert_host, signer, delta):
    message = signer.sign(notification(EVENT, timestamp=now_stamp(delta)))
    assert_refused(deliver(message), 400, "stale_sns_message")


def test_a_timestamp_59_minutes_old_is_still_accepted(deliver, cert_host, signer):
    assert deliver(signer.sign(notification(EVENT, timestamp=now_stamp(timedelta(minutes=-59))))).status_code == 200


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"not json at all",
        b"\xff\xfe\x00garbage",
        b"[1, 2, 3]",
        b'{"Type": "Notification"}',
        b'{"Type": "Surprise", "MessageId": "x"}',
        json.dumps({**notification(EVENT), "Message": {"not": "a string"}}).encode(),
    ],
)
def test_garbage_bodies_are_refused(deliver, cert_host, body):
    assert_refused(deliver(body), 400, "invalid_sns_message")


def test_an_unsupported_signature_version_is_refused(deliver, cert_host, signer):
    message = dict(signer.sign(notification(EVENT)), SignatureVersion="3")
    assert_refused(deliver(message), 400, "invalid_sns_message")


def test_headers_that_contradict_the_body_are_refused(deliver, cert_host, signer):
    message = signer.sign(notification(EVENT))
    response = deliver(message, HTTP_X_AMZ_SNS_MESSAGE_TYPE="SubscriptionConfirmation")
    assert_refused(response, 400, "invalid_sns_message")


def test_a_body_over_the_sns_limit_is_refused(deliver, cert_host):
    response = deliver(b"{" + b" " * (600 * 1024) + b"}")
    assert response.status_code == 413 and response.json()["code"] == "body_too_large"
    assert response.json()["limit"] == 256 * 1024
    assert SnsDelivery.objects.count() == 0


def test_only_post_is_allowed(client):
    assert client.get("/hooks/sns/").status_code == 405


def test_no_csrf_token_or_login_is_needed(signer, cert_host, broker):
    from django.test import Client

    strict = Client(enforce_csrf_checks=True)
    assert post(strict, signer.sign(notification(EVENT))).status_code == 200


# --- the verification switch ----------------------------------------------------------------------


def _load_settings(**env) -> subprocess.CompletedProcess:
    root = Path(__file__).resolve().parents[2]
    environment = {**os.environ, "DJANGO_SETTINGS_MODULE": "deployment_service.settings", **env}
    environment.pop("DATABASE_URL", None)
    environment["TROY_DATA_DIR"] = "/tmp/troy-sns-settings-test"
    return subprocess.run(
        [sys.executable, "-c", "import django; django.setup(); print('loaded')"],
        cwd=root,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_turning_signature_verification_off_is_refused_without_debug():
    refused = _load_settings(TROY_SNS_VERIFY_SIGNATURES="0", DJANGO_DEBUG="0")
    assert refused.returncode != 0
    assert "ImproperlyConfigured" in refused.stderr and "TROY_SNS_VERIFY_SIGNATURES=0" in refused.stderr

    allowed = _load_settings(TROY_SNS_VERIFY_SIGNATURES="0", DJANGO_DEBUG="1")
    assert allowed.returncode == 0, allowed.stderr
    assert "loaded" in allowed.stdout


def test_with_verification_off_in_debug_the_other_checks_still_apply(deliver, settings, broker):
    settings.TROY_SNS_VERIFY_SIGNATURES = False
    unsigned = dict(notification(EVENT), SignatureVersion="1", Signature="EXAMPLE")
    assert deliver(unsigned).status_code == 200
    assert_refused_other_topic = deliver(dict(unsigned, MessageId="other", TopicArn="arn:aws:sns:us-east-1:1:x"))
    assert assert_refused_other_topic.status_code in (400, 403)
    assert SnsDelivery.objects.count() == 1
