"""Fault injection for the retry tests: AWS errors raised at named botocore operations, and an
actor run the way Dramatiq's Retries middleware runs it."""

from __future__ import annotations

from collections import Counter

from botocore.exceptions import ClientError, EndpointConnectionError
import dramatiq

from deployment_service import aws as aws_clients
from deployment_service.retries import LAST_ERROR_OPTION, failure_text


def throttling(operation: str) -> Exception:
    return ClientError(
        {"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded (injected)"}, "ResponseMetadata": {}},
        operation,
    )


def server_error(operation: str) -> Exception:
    return ClientError(
        {"Error": {"Code": "InternalError", "Message": "injected"}, "ResponseMetadata": {"HTTPStatusCode": 500}},
        operation,
    )


def access_denied(operation: str) -> Exception:
    return ClientError(
        {"Error": {"Code": "AccessDenied", "Message": "Not yours (injected)"}, "ResponseMetadata": {}}, operation
    )


def connection_error(operation: str) -> Exception:
    return EndpointConnectionError(endpoint_url=f"https://aws.invalid/{operation}")


class AwsFaults:
    """``fail("CreateDistribution", times=2)`` makes the next two calls of that operation raise,
    before they reach AWS (``after=True``: after AWS did the work, as when the answer is lost)."""

    def __init__(self) -> None:
        self.plan: dict[tuple[str, str], list] = {}
        self.calls: Counter[str] = Counter()

    def fail(self, operation: str, *, times: int, error=throttling, after: bool = False) -> None:
        self.plan[("after-call" if after else "before-call", operation)] = [times, error]

    def hook(self, event_name: str, **kwargs) -> None:
        stage, _service, operation = event_name.split(".")
        if stage == "before-call":
            self.calls[operation] += 1
        planned = self.plan.get((stage, operation))
        if planned and planned[0] > 0:
            planned[0] -= 1
            raise planned[1](operation)

    def install(self, monkeypatch) -> AwsFaults:
        original = aws_clients.client

        def client(service: str, **kwargs):
            made = original(service, **kwargs)
            for stage in ("before-call", "after-call"):
                made.meta.events.register(stage, self.hook, unique_id=f"troy-test-faults-{stage}")
            return made

        monkeypatch.setattr(aws_clients, "client", client)
        return self


def run_like_dramatiq(actor: dramatiq.Actor, *args) -> int:
    """Call the actor's function as the Retries middleware would: again after each error its
    ``retry_when`` accepts; once it refuses, the ``on_retry_exhausted`` actor gets the message data
    with the last error. Returns the number of retries."""
    retries = 0
    while True:
        try:
            actor.fn(*args)
            return retries
        except Exception as exc:
            if actor.options["retry_when"](retries, exc):
                retries += 1
                continue
            exhausted = actor.options.get("on_retry_exhausted")
            if exhausted:
                data = {
                    "actor_name": actor.actor_name,
                    "args": list(args),
                    "options": {LAST_ERROR_OPTION: failure_text(exc)},
                }
                actor.broker.get_actor(exhausted).fn(data, {"retries": retries})
            return retries
