"""The router's AWS pieces, made by ``bootstrap_aws`` in the kvs mode: moto for the store, the
function's creation, IAM and Lambda (used for real); Stubber for what moto does not emulate
(publishing a function, its LIVE stage, origin request policies)."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import zipfile

from botocore.stub import ANY
from django.core.management import call_command
import pytest

from deployment_service import aws as aws_clients
from deployment_service.integrations import edge_lambda, edge_router
from tests.aws_stubs import (
    PartialStubber,
    cache_policies,
    cache_policy_created,
    function_summary,
    origin_request_policies,
    origin_request_policy_created,
)
from tests.edge_aws import BOOTSTRAP_STUBBED, CACHE_POLICY_ID, ROUTER_FIND_STUBBED

POLICY_ID = "0f0e0d0c-policy"  # as tests.edge_aws


@pytest.fixture
def kvs_mode(settings):
    from moto import mock_aws

    settings.AWS_ENDPOINT_URL = ""
    settings.TROY_HOSTED_ZONE_ID = ""
    settings.TROY_EDGE_POINTERS = "kvs"
    # AWS's own managed policies (the Lambda logging one is attached) are loaded only on request.
    with mock_aws(config={"iam": {"load_aws_managed_policies": True}}):
        aws_clients.reset_clients()
        yield
    aws_clients.reset_clients()


def _cloudfront():
    return aws_clients.client("cloudfront")


def _lambda():
    return aws_clients.client("lambda", region="us-east-1")


def _run() -> list[str]:
    out = io.StringIO()
    call_command("bootstrap_aws", stdout=out)
    return out.getvalue().splitlines()


def _first_run(stubber: PartialStubber, settings) -> None:
    """What the first bootstrap asks of the calls moto lacks: publish the new function, find no
    policy and create it."""
    stubber.add_response(
        "publish_function",
        {"FunctionSummary": function_summary(settings.TROY_EDGE_FUNCTION_NAME, "arn:fn", "x")},
        {"Name": settings.TROY_EDGE_FUNCTION_NAME, "IfMatch": ANY},
    )
    stubber.add_response("list_origin_request_policies", origin_request_policies([]), {"Type": "custom"})
    wanted = edge_router.origin_request_policy_config()
    stubber.add_response(
        "create_origin_request_policy",
        origin_request_policy_created(POLICY_ID, wanted),
        {"OriginRequestPolicyConfig": wanted},
    )
    stubber.add_response("list_cache_policies", cache_policies([]), {"Type": "custom"})
    cache = edge_router.cache_policy_config()
    stubber.add_response(
        "create_cache_policy", cache_policy_created(CACHE_POLICY_ID, cache), {"CachePolicyConfig": cache}
    )


def test_bootstrap_makes_every_router_piece_once_and_then_finds_them(kvs_mode, settings):
    stubber = PartialStubber(_cloudfront(), BOOTSTRAP_STUBBED)
    _first_run(stubber, settings)
    with stubber:
        first = _run()
        stubber.assert_no_pending_responses()

    made = [line for line in first if line.startswith("made")]
    for piece in (
        "key value store",
        "cloudfront function",
        "iam role",
        "lambda",
        "origin request policy",
        "cache policy",
    ):
        assert any(piece in line for line in made), (piece, made)

    # The store, and the function reading it, running this checkout's code.
    store = _cloudfront().describe_key_value_store(Name=settings.TROY_EDGE_KVS_NAME)["KeyValueStore"]
    function = _cloudfront().describe_function(Name=settings.TROY_EDGE_FUNCTION_NAME)["FunctionSummary"]
    assert function["FunctionConfig"]["Runtime"] == "cloudfront-js-2.0"
    assert function["FunctionConfig"]["KeyValueStoreAssociations"]["Items"] == [{"KeyValueStoreARN": store["ARN"]}]
    code = _cloudfront().get_function(Name=settings.TROY_EDGE_FUNCTION_NAME)["FunctionCode"].read()
    assert code == edge_router.VIEWER_FUNCTION_FILE.read_bytes()

    # The role: trusted by Lambda and Lambda@Edge, logging, reading the live bucket.
    iam = aws_clients.client("iam")
    role = iam.get_role(RoleName=settings.TROY_EDGE_LAMBDA_ROLE_NAME)["Role"]
    trust = role["AssumeRolePolicyDocument"]
    trust = json.loads(trust) if isinstance(trust, str) else trust
    assert set(trust["Statement"][0]["Principal"]["Service"]) == {"lambda.amazonaws.com", "edgelambda.amazonaws.com"}
    attached = iam.list_attached_role_policies(RoleName=settings.TROY_EDGE_LAMBDA_ROLE_NAME)["AttachedPolicies"]
    assert [p["PolicyArn"] for p in attached] == [edge_lambda.BASIC_EXECUTION_POLICY_ARN]
    read = iam.get_role_policy(RoleName=settings.TROY_EDGE_LAMBDA_ROLE_NAME, PolicyName=edge_lambda.READ_POLICY_NAME)
    document = read["PolicyDocument"]
    document = json.loads(document) if isinstance(document, str) else document
    assert {s["Resource"] for s in document["Statement"]} == {
        f"arn:aws:s3:::{settings.TROY_LIVE_BUCKET}/*",
        f"arn:aws:s3:::{settings.TROY_LIVE_BUCKET}",
    }

    # The Lambda, in us-east-1, with one numbered version of exactly the package.
    config = _lambda().get_function(FunctionName=settings.TROY_EDGE_LAMBDA_NAME)["Configuration"]
    assert config["Handler"] == "edge.origin_request.handler" and config["Role"] == role["Arn"]
    assert config["Runtime"].startswith("python3")
    assert ":us-east-1:" in config["FunctionArn"]
    versions = [v for v in _lambda().list_versions_by_function(FunctionName=settings.TROY_EDGE_LAMBDA_NAME)["Versions"]]
    numbered = [v for v in versions if v["Version"] != "$LATEST"]
    assert len(numbered) == 1
    assert numbered[0]["CodeSha256"] == edge_lambda.code_sha256(edge_lambda.lambda_zip())
    assert any(line.startswith("edge router:") and numbered[0]["FunctionArn"] in line for line in first)

    # Again: nothing made, no new version, no publish (the stubbed LIVE stage runs this code).
    digest = edge_router.function_digest(code, store["ARN"])
    stubber = PartialStubber(_cloudfront(), ROUTER_FIND_STUBBED)
    stubber.add_response(
        "describe_function",
        {
            "FunctionSummary": function_summary(
                settings.TROY_EDGE_FUNCTION_NAME,
                function["FunctionMetadata"]["FunctionARN"],
                f"Troy viewer-request router {digest}",
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
    with stubber:
        second = _run()
        stubber.assert_no_pending_responses()
    assert [line for line in second if line.startswith("made")] == []
    versions = _lambda().list_versions_by_function(FunctionName=settings.TROY_EDGE_LAMBDA_NAME)["Versions"]
    assert len([v for v in versions if v["Version"] != "$LATEST"]) == 1


def test_changed_handler_code_makes_a_new_version(kvs_mode, settings, monkeypatch, tmp_path):
    stubber = PartialStubber(_cloudfront(), BOOTSTRAP_STUBBED)
    _first_run(stubber, settings)
    with stubber:
        _run()
    role_arn = aws_clients.client("iam").get_role(RoleName=settings.TROY_EDGE_LAMBDA_ROLE_NAME)["Role"]["Arn"]
    first = edge_lambda.lambda_ensure(role_arn)
    assert first.endswith(":1")

    # The same sources again: the same version.
    assert edge_lambda.lambda_ensure(role_arn) == first

    # A changed origin handler: $LATEST updated and version 2 published.
    changed = tmp_path / "edge"
    changed.mkdir()
    for name in edge_lambda.LAMBDA_MODULES:
        (changed / name).write_bytes((edge_lambda.EDGE_DIR / name).read_bytes())
    (changed / "origin_request.py").write_text(
        (edge_lambda.EDGE_DIR / "origin_request.py").read_text() + "\n# changed\n"
    )
    monkeypatch.setattr(edge_lambda, "EDGE_DIR", changed)
    second = edge_lambda.lambda_ensure(role_arn)
    assert second.endswith(":2")
    assert edge_lambda.lambda_ensure(role_arn) == second


def test_the_package_holds_only_what_the_handler_imports_and_imports_alone(tmp_path):
    package = edge_lambda.lambda_zip()
    assert package == edge_lambda.lambda_zip()  # the same bytes every time: a stable CodeSha256
    with zipfile.ZipFile(io.BytesIO(package)) as archive:
        assert sorted(archive.namelist()) == [
            "edge/__init__.py",
            "edge/manifest.py",
            "edge/origin_request.py",
            "edge/rules.py",
        ]
        archive.extractall(tmp_path)
    # The handler imports from the package alone (plus boto3, which the Lambda runtime has).
    check = (
        f"import edge.origin_request as o, sys; assert o.__file__.startswith({str(tmp_path)!r}); "
        "assert callable(o.handler) and 'django' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", check], cwd=tmp_path, check=True, env={"PYTHONPATH": str(tmp_path)})


def test_the_local_mode_makes_no_router(empty_aws_local, settings):
    lines = _run()
    assert not any("lambda" in line or "cloudfront function" in line for line in lines)
    assert not any(line.startswith("edge router:") for line in lines)
    assert _cloudfront().list_functions()["FunctionList"].get("Items", []) == []


@pytest.fixture
def empty_aws_local(settings):
    from moto import mock_aws

    settings.AWS_ENDPOINT_URL = ""
    settings.TROY_HOSTED_ZONE_ID = ""
    assert settings.TROY_EDGE_POINTERS == "local"
    with mock_aws():
        aws_clients.reset_clients()
        yield
    aws_clients.reset_clients()


def test_changed_viewer_code_updates_the_function_and_publishes_it(settings, monkeypatch, tmp_path):
    """UpdateFunction and stages are not emulated: the whole exchange with Stubber."""
    from botocore.stub import Stubber

    name = settings.TROY_EDGE_FUNCTION_NAME
    arn = f"arn:aws:cloudfront::123456789012:function/{name}"
    store = "arn:aws:cloudfront::123456789012:key-value-store/k1"
    changed = tmp_path / "viewer_request.js"
    changed.write_bytes(edge_router.VIEWER_FUNCTION_FILE.read_bytes() + b"\n// v2\n")
    monkeypatch.setattr(edge_router, "VIEWER_FUNCTION_FILE", changed)
    digest = edge_router.function_digest(changed.read_bytes(), store)
    old = "Troy viewer-request router " + "0" * 64
    config = {
        "Comment": f"Troy viewer-request router {digest}",
        "Runtime": "cloudfront-js-2.0",
        "KeyValueStoreAssociations": {"Quantity": 1, "Items": [{"KeyValueStoreARN": store}]},
    }
    aws_clients.reset_clients()
    with Stubber(_cloudfront()) as stubber:
        stubber.add_response(
            "describe_function",
            {"FunctionSummary": function_summary(name, arn, old), "ETag": "L1"},
            {"Name": name, "Stage": "LIVE"},
        )
        stubber.add_response(
            "describe_function",
            {"FunctionSummary": function_summary(name, arn, old, stage="DEVELOPMENT"), "ETag": "D1"},
            {"Name": name, "Stage": "DEVELOPMENT"},
        )
        stubber.add_response(
            "update_function",
            {"FunctionSummary": function_summary(name, arn, config["Comment"], stage="DEVELOPMENT")},
            {"Name": name, "IfMatch": "D1", "FunctionConfig": config, "FunctionCode": changed.read_bytes()},
        )
        stubber.add_response(
            "describe_function",
            {"FunctionSummary": function_summary(name, arn, config["Comment"], stage="DEVELOPMENT"), "ETag": "D2"},
            {"Name": name, "Stage": "DEVELOPMENT"},
        )
        stubber.add_response(
            "publish_function",
            {"FunctionSummary": function_summary(name, arn, config["Comment"])},
            {"Name": name, "IfMatch": "D2"},
        )
        assert edge_router.function_ensure(store) == (arn, digest)
        stubber.assert_no_pending_responses()
    aws_clients.reset_clients()
