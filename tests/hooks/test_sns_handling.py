"""Handling stored SNS deliveries in the worker: CodeBuild events applied to builds (once per
delivery), subscriptions confirmed through the API in the topic's region, and a build's
deliveries — shuffled, duplicated, redelivered — ending where the clean order ends."""

from __future__ import annotations

import json
import uuid

from botocore.stub import Stubber
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
import pytest

from deployment_service import aws as aws_clients
from hooks import sns
from hooks.models import SnsDelivery
from hooks.tasks import handle_sns_delivery
from pipelines.choices import BuildStatus
from pipelines.choices import PipelineStatus as S
from pipelines.models import Build
from tests.hooks.sns_support import CERT_URL, TOPIC, Signer, notification, post, subscription_confirmation
from tests.pipelines.codebuild_support import codebuild_events, fixture, new_codebuild_id, running_build, sent

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def signer() -> Signer:
    return Signer()


@pytest.fixture(autouse=True)
def sns_settings(settings, signer, monkeypatch):
    """Our topic, and SNS's certificate host answering with our certificate (the only stub)."""
    settings.TROY_SNS_TOPIC_ARNS = [TOPIC]
    settings.TROY_SNS_VERIFY_SIGNATURES = True
    sns.certificate_cache_clear()
    monkeypatch.setattr(sns, "_download_certificate", lambda url: signer.pem if url == CERT_URL else b"")
    yield
    sns.certificate_cache_clear()


@pytest.fixture
def committed(django_capture_on_commit_callbacks):
    """Run ``fn`` and then its on-commit sends, as a real commit would."""

    def run(fn, *args, **kwargs):
        with django_capture_on_commit_callbacks(execute=True):
            return fn(*args, **kwargs)

    return run


def store(client, committed, signer, message: dict) -> SnsDelivery:
    response = committed(post, client, signer.sign(message))
    assert response.status_code == 200, response.content
    return SnsDelivery.objects.get(message_id=message["MessageId"])


def test_a_notification_is_applied_to_its_build_once(client, committed, signer, broker):
    build = running_build(codebuild_build_id="troy-build:8745a7a9-c340-456a-9166-edf953571b01")
    delivery = store(client, committed, signer, notification(fixture("codebuild-build-state-change.json")))

    committed(handle_sns_delivery, delivery.pk)
    committed(handle_sns_delivery, delivery.pk)  # a repeated message

    delivery.refresh_from_db()
    assert delivery.processed_at is not None
    assert delivery.result == f"succeeded: build #1 of {build.pipeline.name} handed to the deploy step"
    assert sent(broker, "deploy_build") == [(str(build.id),)]


def test_a_failed_notification_fails_the_build_and_the_pipeline(client, committed, signer, broker):
    cb_id = new_codebuild_id()
    build = running_build(codebuild_build_id=cb_id)
    failed = codebuild_events(cb_id, outcome="FAILED")[-1]
    delivery = store(client, committed, signer, notification(failed))

    committed(handle_sns_delivery, delivery.pk)

    build.refresh_from_db()
    assert build.status == BuildStatus.FAILED and build.pipeline.status == S.FAILED_TO_DEPLOY
    delivery.refresh_from_db()
    assert delivery.result.startswith("failed:") and "npm run build" in delivery.result


@pytest.mark.parametrize(
    "message, result",
    [
        ("this is not json", "ignored: the Message is not a JSON event"),
        (
            json.dumps({"source": "aws.s3", "detail-type": "Object Created", "detail": {}}),
            "ignored: not a CodeBuild build event ('Object Created')",
        ),
    ],
)
def test_notifications_that_are_not_codebuild_events_are_recorded_as_ignored(
    client, committed, signer, broker, message, result
):
    delivery = store(client, committed, signer, notification(message))
    committed(handle_sns_delivery, delivery.pk)
    delivery.refresh_from_db()
    assert delivery.result == result and delivery.processed_at is not None


@pytest.mark.parametrize(
    "topic, region",
    [
        (TOPIC, "us-east-1"),
        ("arn:aws:sns:eu-west-1:123456789012:troy-codebuild", "eu-west-1"),
    ],
)
def test_a_subscription_confirmation_is_confirmed_through_the_api_in_the_topics_region(
    aws, settings, client, committed, signer, broker, topic, region
):
    settings.TROY_SNS_TOPIC_ARNS = [topic]
    message = subscription_confirmation(topic=topic)
    delivery = store(client, committed, signer, message)
    subscription = f"{topic}:{uuid.uuid4()}"

    with Stubber(aws_clients.client("sns", region=region)) as stub:
        stub.add_response(
            "confirm_subscription",
            {"SubscriptionArn": subscription},
            expected_params={
                "TopicArn": topic,
                "Token": message["Token"],
                "AuthenticateOnUnsubscribe": "true",
            },
        )
        committed(handle_sns_delivery, delivery.pk)
        stub.assert_no_pending_responses()

    delivery.refresh_from_db()
    assert delivery.result == f"confirmed: subscription {subscription}"
    assert delivery.processed_at is not None
    committed(handle_sns_delivery, delivery.pk)  # handled: no second call (the stub would refuse it)


def test_a_subscription_confirmation_against_moto(aws, client, committed, signer, broker):
    assert aws.sns_topic_arn == TOPIC  # bootstrap made the topic the fixtures name
    delivery = store(client, committed, signer, subscription_confirmation(topic=aws.sns_topic_arn))
    committed(handle_sns_delivery, delivery.pk)
    delivery.refresh_from_db()
    assert delivery.result.startswith(f"confirmed: subscription {TOPIC}")


# --- the property: shuffled, duplicated, redelivered ---------------------------------------------


def snapshot(build_id, codebuild_build_id) -> dict:
    build = Build.objects.select_related("pipeline").get(pk=build_id)
    return {
        "status": build.status,
        "phase": build.phase,
        "phases": build.phases,
        "logs_url": build.logs_url.replace(codebuild_build_id.split(":")[1], "STREAM"),
        "error": build.error,
        "pipeline": build.pipeline.status,
    }


@pytest.mark.parametrize("outcome", ["SUCCEEDED", "FAILED"])
@hypothesis_settings(
    max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(data=st.data())
def test_deliveries_in_any_order_with_repeats_end_like_the_clean_order(
    client, committed, signer, broker, outcome, data
):
    def deliver_all(cb_id, order, handle_order):
        events = codebuild_events(cb_id, outcome=outcome)
        messages = [signer.sign(notification(event)) for event in events]
        for index in order:  # SNS may deliver a message more than once (same MessageId)
            assert committed(post, client, messages[index]).status_code == 200
        stored = [SnsDelivery.objects.get(message_id=messages[i]["MessageId"]).pk for i in range(len(messages))]
        for index in handle_order:  # and workers may run the handling more than once, in any order
            committed(handle_sns_delivery, stored[index])

    clean_id, messy_id = new_codebuild_id(), new_codebuild_id()
    clean, messy = running_build(codebuild_build_id=clean_id), running_build(codebuild_build_id=messy_id)
    count = len(codebuild_events(clean_id, outcome=outcome))
    in_order = list(range(count))

    deliveries = data.draw(st.permutations(in_order), label="delivery order")
    deliveries = deliveries + data.draw(st.lists(st.sampled_from(in_order), max_size=5), label="redeliveries")
    handling = data.draw(st.permutations(in_order), label="handling order")
    handling = handling + data.draw(st.lists(st.sampled_from(in_order), max_size=5), label="handled again")

    deliver_all(clean_id, in_order, in_order)
    deliver_all(messy_id, deliveries, handling)

    assert snapshot(messy.id, messy_id) == snapshot(clean.id, clean_id)
    deploys = sent(broker, "deploy_build")
    assert deploys.count((str(messy.id),)) == deploys.count((str(clean.id),)) == (outcome == "SUCCEEDED")
