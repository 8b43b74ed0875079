"""botocore's Stubber for the few calls moto does not emulate, on a client whose other calls moto
serves: the CloudFront Function publish, origin request policies, a function's LIVE stage."""

from __future__ import annotations

from collections.abc import Iterable
import copy
from datetime import UTC, datetime

from botocore.stub import Stubber


class PartialStubber(Stubber):
    """Answers only ``operations`` (checking each call's parameters and the answer's shape, as
    Stubber does); every other call of the client goes through to moto."""

    def __init__(self, client, operations: Iterable[str]) -> None:
        super().__init__(client)
        self.operations = sorted(set(operations))
        self._service = client.meta.service_model.service_id.hyphenize()

    def _events(self):
        for name in self.operations:
            yield (f"before-parameter-build.{self._service}.{name}", self._assert_expected_params, f"params-{name}")
            yield (f"before-call.{self._service}.{name}", self._get_response_handler, f"call-{name}")

    def activate(self) -> None:
        for event, handler, suffix in self._events():
            self.client.meta.events.register_first(event, handler, unique_id=f"{self._event_id}-{suffix}")

    def deactivate(self) -> None:
        for event, handler, suffix in self._events():
            self.client.meta.events.unregister(event, handler, unique_id=f"{self._event_id}-{suffix}")


NOW = datetime(2026, 1, 1, tzinfo=UTC)


def function_summary(name: str, arn: str, comment: str, *, stage: str = "LIVE") -> dict:
    return {
        "Name": name,
        "Status": "DEPLOYED" if stage == "LIVE" else "UNASSOCIATED",
        "FunctionConfig": {"Comment": comment, "Runtime": "cloudfront-js-2.0"},
        "FunctionMetadata": {"FunctionARN": arn, "Stage": stage, "CreatedTime": NOW, "LastModifiedTime": NOW},
    }


def origin_request_policies(items: list[tuple[str, dict]]) -> dict:
    """A ListOriginRequestPolicies answer holding ``(id, config)`` policies."""
    return {
        "OriginRequestPolicyList": {
            "MaxItems": 100,
            "Quantity": len(items),
            "Items": [
                {
                    "Type": "custom",
                    "OriginRequestPolicy": {
                        "Id": policy_id,
                        "LastModifiedTime": NOW,
                        "OriginRequestPolicyConfig": config,
                    },
                }
                for policy_id, config in items
            ],
        }
    }


def origin_request_policy_created(policy_id: str, config: dict) -> dict:
    return {
        "OriginRequestPolicy": {"Id": policy_id, "LastModifiedTime": NOW, "OriginRequestPolicyConfig": config},
        "ETag": "ORP1",
    }


def cache_policies(items: list[tuple[str, dict]]) -> dict:
    """A ListCachePolicies answer holding ``(id, config)`` policies."""
    return {
        "CachePolicyList": {
            "MaxItems": 100,
            "Quantity": len(items),
            "Items": [
                {
                    "Type": "custom",
                    "CachePolicy": {"Id": policy_id, "LastModifiedTime": NOW, "CachePolicyConfig": config},
                }
                for policy_id, config in items
            ],
        }
    }


def cache_policy_created(policy_id: str, config: dict) -> dict:
    return {"CachePolicy": {"Id": policy_id, "LastModifiedTime": NOW, "CachePolicyConfig": config}, "ETag": "CP1"}


class Recorder:
    """Keeps the parameters of each call of ``operation`` (moto serves it): for settings moto
    accepts but does not keep, such as a distribution's function associations."""

    def __init__(self, client, operation: str) -> None:
        self.client = client
        self.event = f"before-parameter-build.{client.meta.service_model.service_id.hyphenize()}.{operation}"
        self.calls: list[dict] = []

    def _record(self, params, **kwargs) -> None:
        self.calls.append(copy.deepcopy(params))

    def __enter__(self) -> Recorder:
        self.client.meta.events.register(self.event, self._record, unique_id=f"recorder-{id(self)}")
        return self

    def __exit__(self, *exc) -> None:
        self.client.meta.events.unregister(self.event, self._record, unique_id=f"recorder-{id(self)}")
