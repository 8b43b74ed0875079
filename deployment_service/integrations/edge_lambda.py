"""The router's Lambda@Edge origin handler (docs/edge.md): its package (a zip of the ``edge/``
modules the handler imports), its IAM role, the function in us-east-1 and its numbered versions.
A version is published only when no numbered one runs this package (compared by CodeSha256), so
running ``lambda_ensure`` again with unchanged code makes nothing new. For operator commands
(``bootstrap_aws``, ``edge_rollout``): it waits where Lambda and IAM make one wait.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
import hashlib
import io
import json
import logging
from pathlib import Path
import time
import zipfile

from botocore.exceptions import ClientError
from django.conf import settings

from deployment_service import aws
import edge

logger = logging.getLogger(__name__)

EDGE_DIR = Path(edge.__file__).resolve().parent
# What the origin handler imports, and nothing else (not the local edge, not the JavaScript).
LAMBDA_MODULES = ("__init__.py", "manifest.py", "origin_request.py", "rules.py")
LAMBDA_HANDLER = "edge.origin_request.handler"
LAMBDA_REGION = "us-east-1"
LAMBDA_RUNTIME = "python3.12"
LAMBDA_TIMEOUT_SECONDS = 10  # an origin-request trigger may take at most 30 s
LAMBDA_MEMORY_MB = 128
BASIC_EXECUTION_POLICY_ARN = "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"
READ_POLICY_NAME = "troy-read-live-bucket"
# A fixed timestamp makes the zip, and so its hash, depend on the sources only.
ZIP_DATE = (2020, 1, 1, 0, 0, 0)

LAMBDA_TRUST_POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Principal": {"Service": ["edgelambda.amazonaws.com", "lambda.amazonaws.com"]},
            "Action": "sts:AssumeRole",
        }
    ],
}


Note = Callable[[str, str], None]
"""note(kind, what): kind "found" or "made", for the bootstrap report."""


def quiet(kind: str, what: str) -> None:
    logger.info("%s %s", kind, what)


def _lambda():
    return aws.client("lambda", region=LAMBDA_REGION)


def lambda_zip() -> bytes:
    """The origin handler's package: ``edge/`` with only the modules the handler imports, stored
    uncompressed with fixed timestamps so the same sources always make the same bytes."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for name in LAMBDA_MODULES:
            info = zipfile.ZipInfo(f"edge/{name}", date_time=ZIP_DATE)
            info.external_attr = 0o644 << 16
            archive.writestr(info, (EDGE_DIR / name).read_bytes())
    return buffer.getvalue()


def code_sha256(package: bytes) -> str:
    """Lambda's CodeSha256: base64 of the package's SHA-256."""
    return base64.b64encode(hashlib.sha256(package).digest()).decode()


# --- Lambda@Edge -------------------------------------------------------------------------------


def _role_read_policy() -> dict:
    bucket = settings.TROY_LIVE_BUCKET
    return {
        "Version": "2012-10-17",
        "Statement": [
            # Manifests and 404 pages; ListBucket so a missing key answers 404, not 403.
            {"Effect": "Allow", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{bucket}/*"},
            {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": f"arn:aws:s3:::{bucket}"},
        ],
    }


def role_ensure(note: Note = quiet) -> str:
    """The Lambda@Edge role's ARN: trusted by lambda and edgelambda, with basic logging and
    read access to the live bucket."""
    iam = aws.client("iam")
    name = settings.TROY_EDGE_LAMBDA_ROLE_NAME
    changed = []
    try:
        role = iam.get_role(RoleName=name)["Role"]
    except ClientError as exc:
        if aws.error_code(exc) != "NoSuchEntity":
            raise
        role = iam.create_role(
            RoleName=name,
            AssumeRolePolicyDocument=json.dumps(LAMBDA_TRUST_POLICY),
            Description="Troy: the Lambda@Edge origin router",
        )["Role"]
        changed.append("made")
    else:
        trust = role.get("AssumeRolePolicyDocument")
        if isinstance(trust, str):
            trust = json.loads(trust)
        if trust != LAMBDA_TRUST_POLICY:
            iam.update_assume_role_policy(RoleName=name, PolicyDocument=json.dumps(LAMBDA_TRUST_POLICY))
            changed.append("trust")
    attached = iam.list_attached_role_policies(RoleName=name).get("AttachedPolicies") or []
    if BASIC_EXECUTION_POLICY_ARN not in {p["PolicyArn"] for p in attached}:
        iam.attach_role_policy(RoleName=name, PolicyArn=BASIC_EXECUTION_POLICY_ARN)
        changed.append("logging")
    wanted = _role_read_policy()
    try:
        current = iam.get_role_policy(RoleName=name, PolicyName=READ_POLICY_NAME)["PolicyDocument"]
        current = json.loads(current) if isinstance(current, str) else current
    except ClientError as exc:
        if aws.error_code(exc) != "NoSuchEntity":
            raise
        current = None
    if current != wanted:
        iam.put_role_policy(RoleName=name, PolicyName=READ_POLICY_NAME, PolicyDocument=json.dumps(wanted))
        changed.append("bucket read")
    note("made" if changed else "found", f"iam role {name}" + (f" ({', '.join(changed)})" if changed else ""))
    return role["Arn"]


def _lambda_settings(role_arn: str) -> dict:
    return {
        "Role": role_arn,
        "Handler": LAMBDA_HANDLER,
        "Runtime": LAMBDA_RUNTIME,
        "Timeout": LAMBDA_TIMEOUT_SECONDS,
        "MemorySize": LAMBDA_MEMORY_MB,
    }


def _differs(configuration: dict, wanted: dict) -> bool:
    return any(configuration.get(key) != value for key, value in wanted.items())


def _wait(waiter_name: str) -> None:
    _lambda().get_waiter(waiter_name).wait(
        FunctionName=settings.TROY_EDGE_LAMBDA_NAME, WaiterConfig={"Delay": 2, "MaxAttempts": 90}
    )


def _create_lambda(package: bytes, wanted: dict, *, attempts: int = 10) -> None:
    """CreateFunction, retried while a new role is not yet assumable (IAM takes seconds)."""
    for attempt in range(1, attempts + 1):
        try:
            _lambda().create_function(
                FunctionName=settings.TROY_EDGE_LAMBDA_NAME,
                Code={"ZipFile": package},
                Description="Troy: the origin-request router (Lambda@Edge)",
                Publish=False,
                **wanted,
            )
            return
        except ClientError as exc:
            role_not_ready = aws.error_code(exc) == "InvalidParameterValueException" and "assume" in str(exc).lower()
            if not role_not_ready or attempt == attempts:
                raise
            time.sleep(3)  # an operator command, not a worker


def lambda_versions() -> list[dict]:
    """Numbered versions of the router Lambda, newest first."""
    found = []
    for page in (
        _lambda().get_paginator("list_versions_by_function").paginate(FunctionName=settings.TROY_EDGE_LAMBDA_NAME)
    ):
        found += [v for v in page.get("Versions") or [] if v.get("Version", "$LATEST") != "$LATEST"]
    return sorted(found, key=lambda v: int(v["Version"]), reverse=True)


def lambda_ensure(role_arn: str, note: Note = quiet) -> str:
    """The version ARN of the router Lambda running this checkout's ``edge/`` code: created or
    updated when ``$LATEST`` differs, and a version published only when none matches."""
    name = settings.TROY_EDGE_LAMBDA_NAME
    package = lambda_zip()
    sha = code_sha256(package)
    wanted = _lambda_settings(role_arn)
    try:
        latest = _lambda().get_function(FunctionName=name)["Configuration"]
    except ClientError as exc:
        if aws.error_code(exc) != "ResourceNotFoundException":
            raise
        _create_lambda(package, wanted)
        _wait("function_active_v2")
    else:
        if latest.get("CodeSha256") != sha:
            _lambda().update_function_code(FunctionName=name, ZipFile=package, Publish=False)
            _wait("function_updated_v2")
        if _differs(latest, wanted):
            _lambda().update_function_configuration(FunctionName=name, **wanted)
            _wait("function_updated_v2")
    for version in lambda_versions():
        if version.get("CodeSha256") == sha and not _differs(version, wanted):
            note("found", f"lambda {name} version {version['Version']} ({LAMBDA_REGION})")
            return version["FunctionArn"]
    published = _lambda().publish_version(FunctionName=name, CodeSha256=sha, Description=f"Troy router {sha[:12]}")
    note("made", f"lambda {name} version {published['Version']} ({LAMBDA_REGION})")
    return published["FunctionArn"]
