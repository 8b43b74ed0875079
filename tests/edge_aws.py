"""AWS in the kvs mode, for the tests of the edge flows: moto with Troy's shared resources and
the router bootstrapped (moto makes the store, the function, the role and the Lambda; Stubber
answers what moto lacks), and the stubs a worker's ``router_find`` needs on top of moto."""

from __future__ import annotations

from botocore.stub import ANY
import pytest

from deployment_service import aws as aws_clients
from deployment_service.bootstrap import bootstrap_aws_resources
from deployment_service.integrations import edge_lambda, edge_router
from tests.aws_stubs import (
    PartialStubber,
    cache_policies,
    cache_policy_created,
    function_summary,
    origin_request_policies,
    origin_request_policy_created,
)

POLICY_ID = "0f0e0d0c-policy"
CACHE_POLICY_ID = "0a0b0c0d-cache"
# What moto lacks among the bootstrap's CloudFront calls (Stubber answers them).
BOOTSTRAP_STUBBED = [
    "PublishFunction",
    "ListOriginRequestPolicies",
    "CreateOriginRequestPolicy",
    "ListCachePolicies",
    "CreateCachePolicy",
]
ROUTER_FIND_STUBBED = ["DescribeFunction", "ListOriginRequestPolicies", "ListCachePolicies"]


@pytest.fixture(name="edge_aws")
def edge_aws_fixture(settings, monkeypatch):
    """(moto running, kvs mode) → the Router as bootstrapped."""
    from moto import mock_aws

    settings.AWS_ENDPOINT_URL = ""
    settings.TROY_EDGE_POINTERS = "kvs"
    with mock_aws():
        aws_clients.reset_clients()
        # Loading AWS's managed policies into moto takes seconds per test; these tests only need
        # the role to have some logging policy (tests/integrations/test_edge_router.py checks the
        # real one), so an account policy of that name stands in for it.
        logging_policy = aws_clients.client("iam").create_policy(
            PolicyName="AWSLambdaBasicExecutionRole",
            PolicyDocument='{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "logs:*", "Resource": "*"}]}',
        )
        monkeypatch.setattr(edge_lambda, "BASIC_EXECUTION_POLICY_ARN", logging_policy["Policy"]["Arn"])
        cloudfront = aws_clients.client("cloudfront")
        stubber = PartialStubber(cloudfront, BOOTSTRAP_STUBBED)
        stubber.add_response(
            "publish_function",
            {"FunctionSummary": function_summary(settings.TROY_EDGE_FUNCTION_NAME, "arn:fn", "x")},
            {"Name": settings.TROY_EDGE_FUNCTION_NAME, "IfMatch": ANY},
        )
        stubber.add_response("list_origin_request_policies", origin_request_policies([]))
        config = edge_router.origin_request_policy_config()
        stubber.add_response("create_origin_request_policy", origin_request_policy_created(POLICY_ID, config))
        stubber.add_response("list_cache_policies", cache_policies([]))
        cache = edge_router.cache_policy_config()
        stubber.add_response("create_cache_policy", cache_policy_created(CACHE_POLICY_ID, cache))
        with stubber:
            report = bootstrap_aws_resources()
        settings.TROY_HOSTED_ZONE_ID = report.hosted_zone_id
        settings.TROY_SNS_TOPIC_ARNS = [report.sns_topic_arn]
        assert report.router is not None
        yield report.router
    aws_clients.reset_clients()


def stub_router_find(stubber: PartialStubber, router: edge_router.Router, settings) -> None:
    """What ``router_find`` asks of the calls moto lacks: the LIVE function, the policy lists."""
    stubber.add_response(
        "describe_function",
        {
            "FunctionSummary": function_summary(
                settings.TROY_EDGE_FUNCTION_NAME,
                router.function_arn,
                f"Troy viewer-request router {router.function_digest}",
            ),
            "ETag": "LIVE1",
        },
        {"Name": settings.TROY_EDGE_FUNCTION_NAME, "Stage": "LIVE"},
    )
    stubber.add_response(
        "list_origin_request_policies",
        origin_request_policies([(POLICY_ID, edge_router.origin_request_policy_config())]),
    )
    stubber.add_response("list_cache_policies", cache_policies([(CACHE_POLICY_ID, edge_router.cache_policy_config())]))


def router_find_stubber(router: edge_router.Router, settings, times: int = 1) -> PartialStubber:
    stubber = PartialStubber(aws_clients.client("cloudfront"), ROUTER_FIND_STUBBED)
    for _ in range(times):
        stub_router_find(stubber, router, settings)
    return stubber
