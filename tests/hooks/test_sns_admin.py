"""The deliveries admin is read-only: operators read what SNS and GitHub sent and what handling
did; nobody adds, edits or deletes the record."""

from __future__ import annotations

import pytest

from hooks.models import GithubDelivery, SnsDelivery
from tests.form_client import FormClient
from tests.hooks.sns_support import notification
from tests.pipelines.codebuild_support import fixture

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(staff_user):
    client = FormClient()  # forms without a file field post urlencoded, as browsers do
    client.force_login(staff_user)
    return client


def test_sns_deliveries_are_listed_and_shown_with_the_event_readable(staff_client):
    message = notification(fixture("codebuild-build-state-change.json"))
    delivery = SnsDelivery.objects.create(
        message_id=message["MessageId"],
        message_type="Notification",
        topic_arn=message["TopicArn"],
        body=message,
        result="succeeded: build #1 of shop handed to the deploy step",
    )

    listing = staff_client.get("/admin/hooks/snsdelivery/")
    assert listing.status_code == 200
    assert message["MessageId"] in listing.content.decode()

    page = staff_client.get(f"/admin/hooks/snsdelivery/{delivery.pk}/change/")
    assert page.status_code == 200
    text = page.content.decode()
    assert "handed to the deploy step" in text and "CodeBuild Build State Change" in text
    assert 'name="_save"' not in text  # no save button: read-only


@pytest.mark.parametrize("model", ["snsdelivery", "githubdelivery"])
def test_deliveries_cannot_be_added_changed_or_deleted(staff_client, model):
    if model == "snsdelivery":
        obj = SnsDelivery.objects.create(message_id="m-1", message_type="Notification", topic_arn="arn", body={})
    else:
        obj = GithubDelivery.objects.create(delivery_id="d-1", event="push", payload={"ref": "refs/heads/main"})
    assert staff_client.get(f"/admin/hooks/{model}/add/").status_code == 403
    assert staff_client.post(f"/admin/hooks/{model}/{obj.pk}/change/", {}).status_code == 403
    assert staff_client.post(f"/admin/hooks/{model}/{obj.pk}/delete/", {"post": "yes"}).status_code == 403
    assert type(obj).objects.filter(pk=obj.pk).exists()
    assert staff_client.get(f"/admin/hooks/{model}/{obj.pk}/change/").status_code == 200
