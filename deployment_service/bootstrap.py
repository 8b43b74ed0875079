"""Create the shared AWS resources Troy needs, idempotently: run it again and it finds them.

Used by ``manage.py bootstrap_aws`` (a real account or a local emulator), by ``manage.py
devserver`` and by the test fixtures.
"""

from __future__ import annotations

from dataclasses import dataclass, field
import json

from botocore.exceptions import ClientError
from django.conf import settings

from deployment_service import aws
from deployment_service.integrations import cloudfront, edge_router
from deployment_service.integrations.route53 import alias_records_upsert, public_zone_id


class BootstrapError(Exception):
    """Something bootstrap cannot make itself and an operator must fix (the message says what)."""


@dataclass
class BootstrapReport:
    found: list[str] = field(default_factory=list)
    made: list[str] = field(default_factory=list)
    # Things bootstrap expects but does not create (an operator's to make); shown, never fatal.
    missing: list[str] = field(default_factory=list)
    hosted_zone_id: str = ""
    sns_topic_arn: str = ""
    # The router (docs/edge.md) when the edge pieces were made; None in the local mode.
    router: edge_router.Router | None = None
    # The shared distribution of previews and permalinks (alias *.{base}); "" when not made.
    wildcard_distribution_id: str = ""
    wildcard_distribution_domain: str = ""

    @property
    def edge_router(self) -> str:
        """The router's version, as ``Pipeline.edge_router`` records it; "" in the local mode."""
        return self.router.version if self.router else ""

    def note(self, kind: str, what: str) -> None:
        (self.made if kind == "made" else self.found).append(what)

    def lines(self) -> list[str]:
        return (
            [f"found  {item}" for item in self.found]
            + [f"made   {item}" for item in self.made]
            + [f"missing {item}" for item in self.missing]
        )


def _ensure_bucket(name: str, report: BootstrapReport) -> None:
    s3 = aws.client("s3")
    try:
        s3.head_bucket(Bucket=name)
        report.found.append(f"s3 bucket {name}")
        return
    except ClientError as exc:
        if aws.error_code(exc) not in {"404", "NoSuchBucket", "NotFound"}:
            raise
    kwargs: dict[str, object] = {"Bucket": name}
    if settings.AWS_REGION != "us-east-1":
        kwargs["CreateBucketConfiguration"] = {"LocationConstraint": settings.AWS_REGION}
    s3.create_bucket(**kwargs)
    s3.put_public_access_block(
        Bucket=name,
        PublicAccessBlockConfiguration={
            "BlockPublicAcls": True,
            "IgnorePublicAcls": True,
            "BlockPublicPolicy": True,
            "RestrictPublicBuckets": True,
        },
    )
    report.made.append(f"s3 bucket {name}")


def live_bucket_policy(bucket: str, account_id: str) -> dict:
    """Lets CloudFront (through Origin Access Control) read the live bucket, for this account's
    distributions only."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "AllowCloudFrontServicePrincipalReadOnly",
                "Effect": "Allow",
                "Principal": {"Service": "cloudfront.amazonaws.com"},
                "Action": "s3:GetObject",
                "Resource": f"arn:aws:s3:::{bucket}/*",
                "Condition": {"StringLike": {"AWS:SourceArn": f"arn:aws:cloudfront::{account_id}:distribution/*"}},
            }
        ],
    }


def _ensure_live_bucket_policy(report: BootstrapReport) -> None:
    s3 = aws.client("s3")
    account_id = aws.client("sts").get_caller_identity()["Account"]
    wanted = live_bucket_policy(settings.TROY_LIVE_BUCKET, account_id)
    try:
        current = json.loads(s3.get_bucket_policy(Bucket=settings.TROY_LIVE_BUCKET)["Policy"])
    except ClientError as exc:
        if aws.error_code(exc) != "NoSuchBucketPolicy":
            raise
        current = None
    if current == wanted:
        report.found.append(f"bucket policy on {settings.TROY_LIVE_BUCKET} (CloudFront read)")
        return
    s3.put_bucket_policy(Bucket=settings.TROY_LIVE_BUCKET, Policy=json.dumps(wanted))
    report.made.append(f"bucket policy on {settings.TROY_LIVE_BUCKET} (CloudFront read)")


def _ensure_hosted_zone(report: BootstrapReport) -> str:
    route53 = aws.client("route53")
    if settings.TROY_HOSTED_ZONE_ID:
        zone = route53.get_hosted_zone(Id=settings.TROY_HOSTED_ZONE_ID)["HostedZone"]
        report.found.append(f"hosted zone {zone['Name']} ({settings.TROY_HOSTED_ZONE_ID}, from TROY_HOSTED_ZONE_ID)")
        return settings.TROY_HOSTED_ZONE_ID
    wanted = settings.TROY_BASE_DOMAIN.rstrip(".") + "."
    zone_id = public_zone_id(wanted)
    if zone_id is not None:
        report.found.append(f"hosted zone {wanted} ({zone_id})")
        return zone_id
    zone = route53.create_hosted_zone(Name=wanted, CallerReference=f"troy-{wanted}")["HostedZone"]
    zone_id = zone["Id"].split("/")[-1]
    report.made.append(f"hosted zone {wanted} ({zone_id}); set TROY_HOSTED_ZONE_ID={zone_id}")
    return zone_id


def _ensure_codebuild_project(report: BootstrapReport) -> None:
    codebuild = aws.client("codebuild")
    name = settings.TROY_CODEBUILD_PROJECT
    if codebuild.batch_get_projects(names=[name]).get("projects"):
        report.found.append(f"codebuild project {name}")
        return
    # Every build overrides source, buildspec and artifacts; these are the project's defaults.
    codebuild.create_project(
        name=name,
        description="Troy: builds static sites from GitHub sources (source and buildspec set per build)",
        source={"type": "S3", "location": f"{settings.TROY_ARTIFACT_BUCKET}/sources/placeholder.zip"},
        artifacts={"type": "S3", "location": settings.TROY_ARTIFACT_BUCKET, "packaging": "ZIP"},
        environment={
            "type": "LINUX_CONTAINER",
            "image": settings.TROY_CODEBUILD_IMAGE,
            "computeType": "BUILD_GENERAL1_SMALL",
        },
        serviceRole=settings.TROY_CODEBUILD_SERVICE_ROLE,
        timeoutInMinutes=settings.TROY_CODEBUILD_TIMEOUT_MINUTES,
    )
    report.made.append(f"codebuild project {name}")


# The CodeBuild role's inline policy for build secrets (docs/github.md "Environment and secrets").
SECRETS_READ_POLICY_NAME = "troy-build-secrets-read"


def secrets_read_policy(*, region: str, account_id: str, prefix: str) -> dict:
    """Read access to exactly Troy's SSM prefix, which ``env.parameter-store`` needs. No
    kms:Decrypt: SecureStrings use the AWS managed ``aws/ssm`` key, whose key policy already lets
    the account's principals decrypt through SSM (a customer managed key would need it)."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "TroyBuildSecretsRead",
                "Effect": "Allow",
                "Action": "ssm:GetParameters",
                "Resource": f"arn:aws:ssm:{region}:{account_id}:parameter{prefix}*",
            }
        ],
    }


def _ensure_codebuild_secrets_policy(report: BootstrapReport) -> None:
    """The shared CodeBuild role (``TROY_CODEBUILD_SERVICE_ROLE``, made by the operator) may read
    the build secrets under ``TROY_SSM_PREFIX`` and nothing else of SSM."""
    iam = aws.client("iam")
    role = settings.TROY_CODEBUILD_SERVICE_ROLE.rsplit("/", 1)[-1]
    account_id = aws.client("sts").get_caller_identity()["Account"]
    wanted = secrets_read_policy(region=settings.AWS_REGION, account_id=account_id, prefix=settings.TROY_SSM_PREFIX)
    what = f"iam policy {SECRETS_READ_POLICY_NAME} on role {role} (ssm:GetParameters {settings.TROY_SSM_PREFIX}*)"
    try:
        current = iam.get_role_policy(RoleName=role, PolicyName=SECRETS_READ_POLICY_NAME)["PolicyDocument"]
    except ClientError as exc:
        if aws.error_code(exc) != "NoSuchEntity":
            raise
        current = None
    if isinstance(current, str):
        current = json.loads(current)
    if current == wanted:
        report.found.append(what)
        return
    try:
        iam.put_role_policy(RoleName=role, PolicyName=SECRETS_READ_POLICY_NAME, PolicyDocument=json.dumps(wanted))
    except ClientError as exc:
        if aws.error_code(exc) != "NoSuchEntity":
            raise
        report.missing.append(f"iam role {role} (TROY_CODEBUILD_SERVICE_ROLE): builds cannot read their secrets")
        return
    report.made.append(what)


def _ensure_sns_topic(report: BootstrapReport) -> str:
    sns = aws.client("sns")
    name = settings.TROY_SNS_TOPIC_NAME
    existing = [
        t["TopicArn"]
        for page in sns.get_paginator("list_topics").paginate()
        for t in page.get("Topics", [])
        if t["TopicArn"].rsplit(":", 1)[-1] == name
    ]
    if existing:
        report.found.append(f"sns topic {existing[0]}")
        return existing[0]
    arn = sns.create_topic(Name=name)["TopicArn"]  # CreateTopic is idempotent too
    report.made.append(f"sns topic {arn}; add it to TROY_SNS_TOPIC_ARNS")
    return arn


def _certificate_names(arn: str) -> set[str] | None:
    """The names the ACM certificate covers; None when there is no such certificate."""
    try:
        certificate = aws.client("acm").describe_certificate(CertificateArn=arn)["Certificate"]
    except ClientError as exc:
        if aws.error_code(exc) in {"ResourceNotFoundException", "ValidationException", "InvalidArnException"}:
            return None
        raise
    return {certificate.get("DomainName", ""), *certificate.get("SubjectAlternativeNames", [])}


def _check_wildcard_certificate(report: BootstrapReport) -> None:
    """Every distribution uses TROY_ACM_CERTIFICATE_ARN; the wildcard alias needs it to cover
    `*.{base}` (which also covers every pipeline's `{name}.{base}` and every preview host, all one
    label deep). Troy does not request certificates (that needs DNS validation by the operator)."""
    arn, wanted = settings.TROY_ACM_CERTIFICATE_ARN, cloudfront.wildcard_alias()
    names = _certificate_names(arn)
    if names is None:
        if settings.TROY_EDGE_POINTERS == "kvs":
            raise BootstrapError(
                f"TROY_ACM_CERTIFICATE_ARN {arn} is not an ACM certificate in us-east-1; request one for "
                f"{wanted} (DNS validation), then run bootstrap_aws again."
            )
        report.found.append(f"acm certificate {arn} not found (local mode: not checked)")
        return
    if wanted not in names:
        raise BootstrapError(
            f"The ACM certificate {arn} covers {', '.join(sorted(n for n in names if n))}, not {wanted}: the "
            f"previews' distribution needs a certificate for {wanted}. Request one, set TROY_ACM_CERTIFICATE_ARN "
            "and run bootstrap_aws again."
        )
    report.found.append(f"acm certificate {arn} (covers {wanted})")


def _wildcard_record_target(zone_id: str, name: str) -> str | None:
    """Where the A record at ``name`` (a wildcard: Route53 answers `*` as `\\052`) points."""
    wanted = name.rstrip(".") + "."
    answer = aws.client("route53").list_resource_record_sets(
        HostedZoneId=zone_id, StartRecordName=wanted, StartRecordType="A", MaxItems="10"
    )
    for rrset in answer.get("ResourceRecordSets", []):
        found = rrset["Name"].replace("\\052", "*").rstrip(".") + "."
        if found == wanted and rrset["Type"] == "A" and "AliasTarget" in rrset:
            return rrset["AliasTarget"]["DNSName"].rstrip(".")
    return None


def _ensure_wildcard(report: BootstrapReport) -> None:
    """One distribution for every preview and permalink host (docs/edge.md, "The wildcard
    distribution"): alias `*.{base}`, the router attached exactly as to a pipeline's distribution
    (kvs mode), and the DNS alias `*.{base}` → it. Found again by its CallerReference."""
    alias = cloudfront.wildcard_alias()
    _check_wildcard_certificate(report)
    associations = report.router.associations if report.router is not None else None
    found = cloudfront.wildcard_distribution_find()
    if found is None:
        found = cloudfront.distribution_create(cloudfront.wildcard_spec(associations))
        report.made.append(f"cloudfront distribution {found.id} for {alias} (previews and permalinks)")
    else:
        report.found.append(f"cloudfront distribution {found.id} for {alias} (previews and permalinks)")
        if associations is not None and cloudfront.distribution_attach_router(found.id, associations):
            report.made.append(f"router on the {alias} distribution {found.id} (updated)")
    report.wildcard_distribution_id, report.wildcard_distribution_domain = found.id, found.domain_name
    target = _wildcard_record_target(report.hosted_zone_id, alias)
    if target == found.domain_name.rstrip("."):
        report.found.append(f"dns alias {alias} -> {found.domain_name}")
        return
    alias_records_upsert(zone_id=report.hosted_zone_id, name=alias, distribution_domain=found.domain_name)
    report.made.append(f"dns alias {alias} -> {found.domain_name}")


def bootstrap_aws_resources() -> BootstrapReport:
    report = BootstrapReport()
    _ensure_bucket(settings.TROY_LIVE_BUCKET, report)
    _ensure_live_bucket_policy(report)
    _ensure_bucket(settings.TROY_ARTIFACT_BUCKET, report)
    report.hosted_zone_id = _ensure_hosted_zone(report)
    _ensure_codebuild_project(report)
    _ensure_codebuild_secrets_policy(report)
    report.sns_topic_arn = _ensure_sns_topic(report)
    # The edge router exists only on AWS: with TROY_EDGE_POINTERS=local (the dev run on a moto
    # server, the tests) the local edge serves the sites and nothing AWS-edge is made.
    if settings.TROY_EDGE_POINTERS == "kvs":
        report.router = edge_router.router_ensure(report.note)
    if settings.TROY_WILDCARD_DISTRIBUTION:
        _ensure_wildcard(report)
    return report
