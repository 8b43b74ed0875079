"""The retry policy's classification: which errors are worth trying again."""

from __future__ import annotations

from boto3.exceptions import S3UploadFailedError
from botocore.exceptions import ClientError, ConnectTimeoutError, EndpointConnectionError, ReadTimeoutError
import pytest
import requests

from deployment_service.exceptions import ApplicationError
from deployment_service.integrations.github import GithubError, GithubNotConfigured, UnsafeSourceArchive
from deployment_service.retries import RetryPolicy, TransientFailure, failure_text, is_transient, last_error


def client_error(code: str, status: int | None = None) -> ClientError:
    meta = {"HTTPStatusCode": status} if status else {}
    return ClientError({"Error": {"Code": code, "Message": "m"}, "ResponseMetadata": meta}, "Op")


def github_error_from(cause: Exception) -> GithubError:
    try:
        raise GithubError("GitHub did not answer") from cause
    except GithubError as exc:
        return exc


def s3_upload_failed(cause: ClientError) -> S3UploadFailedError:
    try:
        try:
            raise cause
        except ClientError as exc:
            raise S3UploadFailedError(f"Failed to upload: {exc}")
    except S3UploadFailedError as failed:
        return failed


@pytest.mark.parametrize(
    "exc",
    [
        *(
            client_error(code)
            for code in (
                "Throttling",
                "ThrottlingException",
                "RequestLimitExceeded",
                "TooManyRequestsException",
                "SlowDown",
                "PriorRequestNotComplete",
                "InternalError",
                "ServiceUnavailable",
            )
        ),
        client_error("WhateverCode", 503),
        EndpointConnectionError(endpoint_url="https://x"),
        ConnectTimeoutError(endpoint_url="https://x"),
        ReadTimeoutError(endpoint_url="https://x"),
        requests.ConnectionError("reset"),
        requests.Timeout("slow"),
        GithubError("GitHub answered 502 Bad Gateway", status=502),
        GithubError("GitHub answered 429", status=429),
        GithubError("GitHub answered 403 Forbidden: You have exceeded a secondary rate limit", status=403),
        github_error_from(requests.ConnectionError("refused")),
        s3_upload_failed(client_error("SlowDown")),
        TransientFailure("CreateDistribution: Throttling: m"),
    ],
    ids=repr,
)
def test_transient_errors(exc):
    assert is_transient(exc)


@pytest.mark.parametrize(
    "exc",
    [
        client_error("AccessDenied", 403),
        client_error("NoSuchBucket", 404),
        client_error("InvalidArgument"),
        GithubError("GitHub answered 404 Not Found", status=404),
        GithubError("GitHub answered 403 Forbidden: Resource not accessible by integration", status=403),
        GithubError("GitHub's answer holds no token."),
        GithubNotConfigured("set GITHUB_APP_ID"),
        UnsafeSourceArchive("../etc/passwd"),
        s3_upload_failed(client_error("AccessDenied", 403)),
        ApplicationError("refused"),
        ValueError("a bug"),
        KeyError("a bug"),
    ],
    ids=repr,
)
def test_permanent_errors(exc):
    assert not is_transient(exc)


def test_the_policy_retries_transient_errors_up_to_its_bound_and_permanent_ones_never():
    policy = RetryPolicy(max_retries=3)
    throttled = client_error("Throttling")
    assert [policy.should_retry(n, throttled) for n in range(5)] == [True, True, True, False, False]
    assert not policy.should_retry(0, client_error("AccessDenied"))


def test_actor_options_leave_out_throws_so_github_5xx_is_retried():
    options = RetryPolicy(max_retries=2).actor_options(min_backoff=10, on_retry_exhausted="x")
    assert "throws" not in options
    assert options == {
        "max_retries": 2,
        "retry_when": options["retry_when"],
        "min_backoff": 10,
        "on_retry_exhausted": "x",
    }


def test_the_last_error_travels_in_the_message_options():
    assert failure_text(TransientFailure("StartBuild failed: Throttling")) == "StartBuild failed: Throttling"
    assert failure_text(ValueError("x")) == "ValueError: x"
    assert last_error({"options": {"troy_last_error": "boom"}}) == "boom"
    assert "no error recorded" in last_error({"options": {}})


def test_every_actor_follows_the_one_retry_policy():
    """No actor of Troy's retries on Dramatiq's defaults or makes a transient error final."""
    import dramatiq

    from deployment_service.retries import RetryPolicy

    actors = {name: dramatiq.get_broker().get_actor(name) for name in dramatiq.get_broker().get_declared_actors()}
    troy = {name: actor for name, actor in actors.items() if actor.fn.__module__.split(".")[0] in TROY_APPS}
    assert {"handle_github_delivery", "refresh_github_installation", "provision_pipeline", "store_release"} <= set(troy)
    for name, actor in troy.items():
        retry_when = actor.options.get("retry_when")
        assert retry_when is not None and isinstance(retry_when.__self__, RetryPolicy), name
        assert "throws" not in actor.options, name


TROY_APPS = {"pipelines", "releases", "hooks", "operations", "deployment_service"}
