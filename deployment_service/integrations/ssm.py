"""SSM Parameter Store for build secrets: SecureString parameters that CodeBuild reads through the
buildspec's ``env.parameter-store`` (so no secret value travels in StartBuild or its events).

Small functions over ``aws.client("ssm")``; each is idempotent (a write overwrites, a delete of a
parameter that is gone succeeds). The value is never logged.
"""

from __future__ import annotations

from botocore.exceptions import ClientError

from deployment_service import aws

DELETE_BATCH = 10  # DeleteParameters takes at most 10 names


def put_secret(*, name: str, value: str, description: str = "") -> int:
    """Write (or overwrite) SecureString ``name`` under the account's ``aws/ssm`` key; its version."""
    answer = aws.client("ssm").put_parameter(
        Name=name,
        Value=value,
        Type="SecureString",
        Overwrite=True,
        Tier="Standard",
        Description=description[:1024],
    )
    return int(answer.get("Version", 0))


def delete_secret(*, name: str) -> bool:
    """Delete parameter ``name``; False when there was none."""
    try:
        aws.client("ssm").delete_parameter(Name=name)
    except ClientError as exc:
        if aws.error_code(exc) == "ParameterNotFound":
            return False
        raise
    return True


def parameter_names_under(path: str) -> list[str]:
    """Names of every parameter under ``path`` (recursive, paged)."""
    names: list[str] = []
    paginator = aws.client("ssm").get_paginator("get_parameters_by_path")
    for page in paginator.paginate(Path=path.rstrip("/") or "/", Recursive=True, WithDecryption=False):
        names.extend(parameter["Name"] for parameter in page.get("Parameters", []))
    return names


def delete_under(path: str) -> int:
    """Delete every parameter under ``path``; how many there were."""
    names = parameter_names_under(path)
    client = aws.client("ssm")
    for start in range(0, len(names), DELETE_BATCH):
        client.delete_parameters(Names=names[start : start + DELETE_BATCH])
    return len(names)
