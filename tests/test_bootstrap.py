"""Operator commands: ``bootstrap_aws`` (idempotent) and ``issue_token``."""

import io
import json

from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
import pytest
from rest_framework.authtoken.models import Token

from deployment_service import aws as aws_clients


@pytest.fixture
def empty_aws(settings):
    """moto with nothing created yet (the ``aws`` fixture bootstraps; this one does not)."""
    from moto import mock_aws

    settings.AWS_ENDPOINT_URL = ""
    settings.TROY_HOSTED_ZONE_ID = ""
    with mock_aws():
        aws_clients.reset_clients()
        yield
    aws_clients.reset_clients()


def _run(*args) -> list[str]:
    out = io.StringIO()
    call_command(*args, stdout=out)
    return out.getvalue().splitlines()


def test_bootstrap_aws_creates_everything_once_and_then_finds_it(empty_aws, settings):
    first = _run("bootstrap_aws")
    made = [line for line in first if line.startswith("made")]
    assert any(f"s3 bucket {settings.TROY_LIVE_BUCKET}" in line for line in made)
    assert any(f"s3 bucket {settings.TROY_ARTIFACT_BUCKET}" in line for line in made)
    assert any("bucket policy" in line for line in made)
    assert any(f"hosted zone {settings.TROY_BASE_DOMAIN}." in line for line in made)
    assert any(f"codebuild project {settings.TROY_CODEBUILD_PROJECT}" in line for line in made)
    assert any("sns topic" in line for line in made)

    second = _run("bootstrap_aws")
    assert not [line for line in second if line.startswith("made")]
    assert len([line for line in second if line.startswith("found")]) == len(made)
    assert [line for line in second if "hosted zone id" in line] == [line for line in first if "hosted zone id" in line]

    # What exists, exactly once.
    s3 = aws_clients.client("s3")
    buckets = sorted(b["Name"] for b in s3.list_buckets()["Buckets"])
    assert buckets == sorted([settings.TROY_LIVE_BUCKET, settings.TROY_ARTIFACT_BUCKET])
    policy = json.loads(s3.get_bucket_policy(Bucket=settings.TROY_LIVE_BUCKET)["Policy"])
    [statement] = policy["Statement"]
    assert statement["Principal"] == {"Service": "cloudfront.amazonaws.com"}
    assert statement["Action"] == "s3:GetObject"
    block = s3.get_public_access_block(Bucket=settings.TROY_LIVE_BUCKET)["PublicAccessBlockConfiguration"]
    assert all(block.values())
    zones = aws_clients.client("route53").list_hosted_zones()["HostedZones"]
    assert [z["Name"] for z in zones] == [f"{settings.TROY_BASE_DOMAIN}."]
    projects = aws_clients.client("codebuild").batch_get_projects(names=[settings.TROY_CODEBUILD_PROJECT])["projects"]
    assert len(projects) == 1
    topics = aws_clients.client("sns").list_topics()["Topics"]
    assert [t["TopicArn"].rsplit(":", 1)[-1] for t in topics] == [settings.TROY_SNS_TOPIC_NAME]


def test_bootstrap_aws_uses_the_configured_hosted_zone(empty_aws, settings):
    zone = aws_clients.client("route53").create_hosted_zone(Name="example.org.", CallerReference="mine")["HostedZone"]
    settings.TROY_HOSTED_ZONE_ID = zone["Id"].split("/")[-1]

    lines = _run("bootstrap_aws")

    assert any("hosted zone example.org." in line and "TROY_HOSTED_ZONE_ID" in line for line in lines)
    assert len(aws_clients.client("route53").list_hosted_zones()["HostedZones"]) == 1


@pytest.mark.django_db
def test_issue_token_creates_the_user_and_prints_only_the_key():
    lines = _run("issue_token", "bob")

    user = get_user_model().objects.get(username="bob")
    assert lines == [Token.objects.get(user=user).key]
    assert not user.is_staff and not user.has_usable_password()
    assert _run("issue_token", "bob") == lines  # the same token again, no second user
    assert get_user_model().objects.filter(username="bob").count() == 1


@pytest.mark.django_db
def test_issue_token_staff_makes_an_operator():
    [key] = _run("issue_token", "ops", "--staff")
    user = Token.objects.get(key=key).user
    assert user.username == "ops" and user.is_staff and user.is_superuser

    get_user_model().objects.create_user(username="dana")
    [key] = _run("issue_token", "dana", "--staff")
    assert Token.objects.get(key=key).user.is_staff


@pytest.mark.django_db
@pytest.mark.parametrize("username", ["bad name", "", "x" * 151, "semi;colon"])
def test_issue_token_refuses_an_invalid_username(username):
    with pytest.raises(CommandError, match="invalid username"):
        call_command("issue_token", username, stdout=io.StringIO())
    assert not get_user_model().objects.exists()
    assert not Token.objects.exists()
