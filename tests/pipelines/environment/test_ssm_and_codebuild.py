"""Secrets reach CodeBuild by SSM reference only: the copy to Parameter Store (moto), the
buildspec, StartBuild's parameters (botocore Stubber), and the CodeBuild role's policy."""

from __future__ import annotations

import json

from botocore.stub import Stubber
import pytest
import yaml

from deployment_service import aws as aws_clients
from deployment_service.bootstrap import SECRETS_READ_POLICY_NAME, bootstrap_aws_resources
from deployment_service.integrations import codebuild as cb
from deployment_service.retries import TransientFailure
from events.models import Event
from pipelines import services
from pipelines.flows.codebuild import codebuild_start_run
from pipelines.flows.environment import SecretSyncError, secret_sync_run, secrets_delete_all
from pipelines.models import PipelineVariable
from tests.factories import PipelineFactory
from tests.pipelines.codebuild_support import new_codebuild_id
from tests.pipelines.test_codebuild import INSTALLATION, codebuild_stubber, queued_build, started_answer

pytestmark = pytest.mark.django_db

SECRET = "ghp_s3cr3t-value-0123456789"


def _ssm():
    return aws_clients.client("ssm")


def _set_secret(pipeline, name="API_KEY", value=SECRET, **kwargs):
    return services.env_variable_set(
        pipeline_id=pipeline.id, name=name, value=value, secret=True, actor="alice", **kwargs
    )


def _param(pipeline, name="API_KEY"):
    return f"/troy/{pipeline.id}/{name}"


def test_the_worker_copies_a_secret_to_a_securestring_and_marks_the_row(aws, django_capture_on_commit_callbacks):
    build = queued_build()
    pipeline = build.pipeline
    with django_capture_on_commit_callbacks():  # the message is not run: the test calls the flow
        _set_secret(pipeline)
    secret_sync_run(pipeline_id=pipeline.id, name="API_KEY")
    parameter = _ssm().get_parameter(Name=_param(pipeline), WithDecryption=True)["Parameter"]
    assert parameter["Type"] == "SecureString" and parameter["Value"] == SECRET
    row = PipelineVariable.objects.get(name="API_KEY")
    assert row.synced_at is not None and row.sync_error == ""

    secret_sync_run(pipeline_id=pipeline.id, name="API_KEY")  # a duplicate message: same result
    assert _ssm().get_parameter(Name=_param(pipeline), WithDecryption=True)["Parameter"]["Value"] == SECRET

    services.env_variable_unset(pipeline_id=pipeline.id, name="API_KEY", actor="alice")
    secret_sync_run(pipeline_id=pipeline.id, name="API_KEY")
    assert _ssm().get_parameters(Names=[_param(pipeline)])["InvalidParameters"] == [_param(pipeline)]
    secret_sync_run(pipeline_id=pipeline.id, name="API_KEY")  # deleting what is gone is done


def test_a_secret_turned_plain_leaves_ssm(aws):
    pipeline = queued_build().pipeline
    _set_secret(pipeline)
    secret_sync_run(pipeline_id=pipeline.id, name="API_KEY")
    services.env_variable_set(pipeline_id=pipeline.id, name="API_KEY", value="public", actor="alice")
    secret_sync_run(pipeline_id=pipeline.id, name="API_KEY")
    assert _ssm().get_parameters(Names=[_param(pipeline)])["InvalidParameters"] == [_param(pipeline)]


def test_a_sync_that_raced_a_newer_set_does_not_mark_it_synced(aws, monkeypatch):
    pipeline = queued_build().pipeline
    _set_secret(pipeline, value="first-value")
    real_put = services.env_secret_mark_synced

    def set_again_then_mark(**kwargs):
        _set_secret(pipeline, value="second-value")
        return real_put(**kwargs)

    monkeypatch.setattr(services, "env_secret_mark_synced", set_again_then_mark)
    secret_sync_run(pipeline_id=pipeline.id, name="API_KEY")
    assert PipelineVariable.objects.get(name="API_KEY").synced_at is None  # the next message copies it


def test_throttling_is_retried_and_a_refusal_is_kept_without_the_value(aws):
    pipeline = queued_build().pipeline
    _set_secret(pipeline)
    with Stubber(_ssm()) as stub:
        stub.add_client_error("put_parameter", service_error_code="ThrottlingException", http_status_code=400)
        with pytest.raises(TransientFailure):
            secret_sync_run(pipeline_id=pipeline.id, name="API_KEY")
        stub.add_client_error(
            "put_parameter",
            service_error_code="ValidationException",
            service_message=f"Value '{SECRET}' at 'value' failed to satisfy constraint",
            http_status_code=400,
        )
        with pytest.raises(SecretSyncError) as caught:
            secret_sync_run(pipeline_id=pipeline.id, name="API_KEY")
    assert SECRET not in str(caught.value)
    row = PipelineVariable.objects.get(name="API_KEY")
    assert row.synced_at is None and "ValidationException" in row.sync_error and SECRET not in row.sync_error


def test_deleting_a_pipelines_secrets_removes_every_parameter_of_it_only(aws):
    first = queued_build().pipeline
    second = PipelineFactory(repository="")
    for name in ("A_KEY", "B_KEY"):
        _set_secret(first, name=name)
        secret_sync_run(pipeline_id=first.id, name=name)
    _set_secret(second, name="KEEP")
    secret_sync_run(pipeline_id=second.id, name="KEEP")
    assert secrets_delete_all(pipeline_id=first.id) == 2
    assert secrets_delete_all(pipeline_id=first.id) == 0
    assert _ssm().get_parameter(Name=_param(second, "KEEP"))["Parameter"]["Name"] == _param(second, "KEEP")


def _start_with_stub(build) -> dict:
    """Run the start flow with StartBuild stubbed; the StartBuild parameters it sent."""
    captured: dict = {}
    client = aws_clients.client("codebuild")

    def keep(params, **kwargs):
        captured.update(params)

    client.meta.events.register("provide-client-params.codebuild.StartBuild", keep)
    try:
        with codebuild_stubber() as stub:
            stub.add_response("start_build", started_answer(new_codebuild_id()))
            codebuild_start_run(build_id=build.id)
            stub.assert_no_pending_responses()
    finally:
        client.meta.events.unregister("provide-client-params.codebuild.StartBuild", keep)
    return captured


def test_start_build_carries_secrets_by_reference_only(aws, github, on_commit):
    build = queued_build(github_installation_id=INSTALLATION, base_dir="apps/web", build_output_dir="dist")
    pipeline = build.pipeline
    services.env_variable_set(pipeline_id=pipeline.id, name="NODE_ENV", value="production", actor="alice")
    _set_secret(pipeline)  # not synced yet: the start copies it first
    _set_secret(pipeline, name="PREVIEW_ONLY", value="preview-only-secret", scope="previews")

    params = _start_with_stub(build)

    assert SECRET not in json.dumps(params)
    assert "preview-only-secret" not in json.dumps(params)
    assert params["environmentVariablesOverride"] == [
        {"name": "TROY_BUILD_ID", "value": str(build.id), "type": "PLAINTEXT"}
    ]
    spec = yaml.safe_load(params["buildspecOverride"])
    assert spec["env"] == {
        "variables": {"NODE_ENV": "production"},
        "parameter-store": {"API_KEY": _param(pipeline)},
    }
    assert spec["phases"]["build"]["commands"][0] == 'cd "${CODEBUILD_SRC_DIR:-.}"/apps/web'
    assert spec["artifacts"]["base-directory"] == "apps/web/dist"
    # CodeBuild resolves the reference: the parameter exists before the build starts.
    assert _ssm().get_parameter(Name=_param(pipeline), WithDecryption=True)["Parameter"]["Value"] == SECRET
    assert PipelineVariable.objects.get(name="API_KEY").synced_at is not None
    # Nor in any event of the pipeline.
    assert not [e for e in Event.objects.filter(pipeline_id=pipeline.id) if SECRET in e.message]


def test_a_fork_build_gets_no_parameter_store_references(aws, github):
    build = queued_build(github_installation_id=INSTALLATION)
    _set_secret(build.pipeline)
    type(build).objects.filter(pk=build.pk).update(from_fork=True)
    build.refresh_from_db()
    params = _start_with_stub(build)
    spec = yaml.safe_load(params["buildspecOverride"])
    assert "env" not in spec
    assert SECRET not in json.dumps(params)
    # The fork build copied nothing it does not use.
    assert PipelineVariable.objects.get(name="API_KEY").synced_at is None


def test_bootstrap_lets_the_codebuild_role_read_exactly_the_prefix(aws, settings):
    iam = aws_clients.client("iam")
    iam.create_role(
        RoleName="troy-codebuild", AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []})
    )
    report = bootstrap_aws_resources()
    assert any(SECRETS_READ_POLICY_NAME in line for line in report.made)
    document = iam.get_role_policy(RoleName="troy-codebuild", PolicyName=SECRETS_READ_POLICY_NAME)["PolicyDocument"]
    if isinstance(document, str):
        document = json.loads(document)
    assert document["Statement"] == [
        {
            "Sid": "TroyBuildSecretsRead",
            "Effect": "Allow",
            "Action": "ssm:GetParameters",
            "Resource": "arn:aws:ssm:us-east-1:123456789012:parameter/troy/*",
        }
    ]
    again = bootstrap_aws_resources()
    assert any(SECRETS_READ_POLICY_NAME in line for line in again.found)
    assert not again.made


def test_bootstrap_names_a_missing_codebuild_role(aws):
    report = bootstrap_aws_resources()  # the aws fixture's moto has no such role
    assert any("troy-codebuild" in line for line in report.missing)


@pytest.mark.parametrize(
    ("base_dir", "output_dir", "artifacts", "first_command"),
    [
        ("", "dist", "dist", "npm ci"),
        ("apps/web", ".", "apps/web", 'cd "${CODEBUILD_SRC_DIR:-.}"/apps/web'),
        ("apps/web/", "/out/", "apps/web/out", 'cd "${CODEBUILD_SRC_DIR:-.}"/apps/web'),
        ("my app", "dist", "my app/dist", "cd \"${CODEBUILD_SRC_DIR:-.}\"/'my app'"),
    ],
)
def test_buildspec_base_dir(base_dir, output_dir, artifacts, first_command):
    spec = yaml.safe_load(
        cb.buildspec_for(install="npm ci", build="", test="npm test", output_dir=output_dir, base_dir=base_dir)
    )
    assert spec["artifacts"]["base-directory"] == artifacts
    assert spec["phases"]["install"]["commands"][0] == first_command
    assert spec["phases"]["post_build"]["commands"][-1] == "npm test"
    if base_dir:  # every phase enters the base directory first
        assert spec["phases"]["post_build"]["commands"][0] == first_command
    assert "env" not in spec
