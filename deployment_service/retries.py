"""One retry policy for every Dramatiq actor.

An error is *transient* when trying again later may succeed: AWS throttling, any AWS 5xx, a
connection or a read that broke off or timed out, GitHub 5xx, 429 and its secondary rate limit.
Everything else is *permanent* (a refusal, a bug, an :class:`ApplicationError`).

Flows re-raise transient errors with the row left in its in-flight status, so Dramatiq retries the
message with backoff and the next attempt resumes; they fail the row at once on a permanent one.
When the retries are used up, the actor's ``on_retry_exhausted`` actor fails the row with the last
error (:class:`LastErrorText` puts it on the message for that actor to read).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from boto3.exceptions import S3UploadFailedError
from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ReadTimeoutError,
)
from dramatiq.middleware import Middleware
import requests

from deployment_service.exceptions import ApplicationError
from deployment_service.integrations.github import GithubError

THROTTLING_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "RequestLimitExceeded",
        "TooManyRequestsException",
        "SlowDown",
        "PriorRequestNotComplete",
    }
)
SERVER_ERROR_CODES = frozenset({"InternalError", "InternalFailure", "InternalServerError", "ServiceUnavailable"})
BOTOCORE_NETWORK_ERRORS = (EndpointConnectionError, ConnectTimeoutError, ReadTimeoutError, ConnectionClosedError)
REQUESTS_NETWORK_ERRORS = (requests.ConnectionError, requests.Timeout)
GITHUB_RATE_LIMIT_WORDS = ("rate limit",)  # GitHub's 403 for a secondary rate limit says so in its message

# The key under which LastErrorText keeps the error text in the message's options.
LAST_ERROR_OPTION = "troy_last_error"


class TransientFailure(Exception):
    """A transient error, re-raised by a flow with the text the row's failure would carry
    (``failure_text``) so that the exhausted-retries actor fails the row with that same text."""

    def __init__(self, failure_text: str) -> None:
        super().__init__(failure_text)
        self.failure_text = failure_text


def _client_error_transient(exc: ClientError) -> bool:
    error = exc.response.get("Error", {})
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
    return error.get("Code", "") in THROTTLING_CODES | SERVER_ERROR_CODES or int(status) >= 500


def _github_error_transient(exc: GithubError) -> bool:
    # GithubError carries GitHub's HTTP status; None means GitHub did not answer, and the
    # requests error it came from tells whether the connection failed.
    status = getattr(exc, "status", None)
    if status is None:
        return isinstance(exc.__cause__, REQUESTS_NETWORK_ERRORS)
    if status >= 500 or status == 429:
        return True
    return status == 403 and any(word in exc.detail.lower() for word in GITHUB_RATE_LIMIT_WORDS)


def is_transient(exc: BaseException) -> bool:
    """Whether trying again later may succeed (see the module docstring)."""
    if isinstance(exc, TransientFailure):
        return True
    if isinstance(exc, GithubError):
        return _github_error_transient(exc)
    if isinstance(exc, ApplicationError):
        return False
    if isinstance(exc, ClientError):
        return _client_error_transient(exc)
    if isinstance(exc, S3UploadFailedError):  # boto3's upload_file hides the ClientError it raises for
        return isinstance(exc.__context__, ClientError) and _client_error_transient(exc.__context__)
    return isinstance(exc, BOTOCORE_NETWORK_ERRORS + REQUESTS_NETWORK_ERRORS)


@dataclass(frozen=True)
class RetryPolicy:
    """``retry_when`` for an actor: transient errors, at most ``max_retries`` times. Dramatiq's
    ``max_retries`` option is ignored once ``retry_when`` is set, so the bound lives here."""

    max_retries: int

    def should_retry(self, retries_so_far: int, exception: BaseException) -> bool:
        return retries_so_far < self.max_retries and is_transient(exception)

    def actor_options(self, *, on_retry_exhausted: str | None = None, **backoff: int) -> dict[str, Any]:
        """The Dramatiq actor options. No ``throws``: GithubError is an ApplicationError, and
        ``throws`` would make a GitHub 5xx final; ``retry_when`` already refuses permanent errors."""
        options: dict[str, Any] = {"max_retries": self.max_retries, "retry_when": self.should_retry, **backoff}
        if on_retry_exhausted:
            options["on_retry_exhausted"] = on_retry_exhausted
        return options


def failure_text(exc: BaseException) -> str:
    if isinstance(exc, TransientFailure):
        return exc.failure_text
    if isinstance(exc, ApplicationError):
        return exc.detail
    return f"{type(exc).__name__}: {exc}"


def last_error(message_data: dict[str, Any]) -> str:
    """The error text of the last attempt, from the message data an ``on_retry_exhausted`` actor gets."""
    options = message_data.get("options") or {}
    return str(options.get(LAST_ERROR_OPTION) or "The retries were used up (no error recorded).")


def message_arg(message_data: dict[str, Any], index: int = 0) -> str | None:
    args = message_data.get("args") or []
    return str(args[index]) if len(args) > index else None


class LastErrorText(Middleware):
    """Keeps the failed attempt's error text in the message options, where the exhausted-retries
    actor finds it. Listed after ``Retries``: ``after_*`` hooks run in reverse order, so this one
    runs first, before Retries sends the message on."""

    def after_process_message(self, broker, message, *, result=None, exception=None):
        if exception is not None:
            message.options[LAST_ERROR_OPTION] = failure_text(exception)[:2000]
