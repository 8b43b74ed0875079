"""SNS: confirming Troy's HTTPS subscription to the CodeBuild topic (called by a worker, never
in a web request)."""

from __future__ import annotations

from deployment_service import aws


def topic_region(topic_arn: str) -> str:
    """``arn:aws:sns:REGION:ACCOUNT:NAME`` → REGION."""
    parts = topic_arn.split(":")
    if len(parts) < 6 or parts[2] != "sns" or not parts[3]:
        raise ValueError(f"{topic_arn!r} is not an SNS topic ARN")
    return parts[3]


def sns_confirm_subscription(*, topic_arn: str, token: str) -> str:
    """ConfirmSubscription in the topic's own region; returns the subscription ARN. Unsubscribing
    then needs AWS credentials (AuthenticateOnUnsubscribe), not just the link in every message."""
    answer = aws.client("sns", region=topic_region(topic_arn)).confirm_subscription(
        TopicArn=topic_arn, Token=token, AuthenticateOnUnsubscribe="true"
    )
    return answer.get("SubscriptionArn", "")
