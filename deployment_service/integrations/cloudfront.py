"""CloudFront distributions for pipelines: create (idempotently), find, disable, delete.

Small functions over ``aws.client("cloudfront")`` that return plain data. "Not found" is answered
as ``None`` / ``False`` rather than an exception, because every caller treats it as "already done".
Other AWS errors propagate as botocore's ``ClientError``.
"""

from __future__ import annotations

from dataclasses import dataclass
import logging

from botocore.exceptions import ClientError
from django.conf import settings

from deployment_service import aws

logger = logging.getLogger(__name__)

# CloudFront's hosted zone for alias records (the same for every distribution).
CLOUDFRONT_HOSTED_ZONE_ID = "Z2FDTNDATAQYW2"
# AWS managed cache policy "CachingOptimized": no cookies/query strings in the key, gzip+brotli.
CACHING_OPTIMIZED_POLICY_ID = "658327ea-f89d-4fab-a63d-7e88639e58f6"
# One Origin Access Control signs every distribution's requests to the live bucket (the bucket
# policy allows this account's distributions); a per-pipeline one would hit the account quota.
ORIGIN_ACCESS_CONTROL_NAME = "troy-live-bucket"
ORIGIN_ID = "troy-live-bucket"
# The router's Lambda@Edge version answers both (edge/origin_request.py dispatches on the event).
LAMBDA_EVENTS = ("origin-request", "origin-response")


class DistributionLookupError(Exception):
    """CloudFront says a distribution with our CallerReference exists but it cannot be found."""


@dataclass(frozen=True)
class Distribution:
    id: str
    domain_name: str
    status: str  # "InProgress" or "Deployed"
    enabled: bool
    etag: str = ""

    @property
    def deployed(self) -> bool:
        return self.status == "Deployed"


@dataclass(frozen=True)
class EdgeAssociations:
    """The router a distribution runs (docs/edge.md): the viewer-request CloudFront Function
    (by ARN: it runs whatever is published LIVE), the origin-request Lambda@Edge version, and
    the origin request policy that forwards ``x-troy-build`` to it; the same Lambda version
    handles origin responses (the build's custom headers, edge/rules.py); the cache policy keys
    the cache by URI and query string."""

    function_arn: str
    lambda_version_arn: str
    origin_request_policy_id: str
    cache_policy_id: str


@dataclass(frozen=True)
class DistributionSpec:
    """What a pipeline's distribution looks like; built by the provisioning flow.

    ``comment`` must contain ``caller_reference``: that is how :func:`distribution_find` picks
    candidates out of the account's distributions (the listing does not show CallerReferences).
    """

    caller_reference: str
    comment: str
    alias: str
    origin_path: str
    # None: the old in-place layout (OriginPath /{pipeline}, no functions), as the local mode
    # (a moto server has no edge) still creates.
    router: EdgeAssociations | None = None


# The shared distribution of every preview and permalink host (alias *.{TROY_BASE_DOMAIN}),
# found again by this CallerReference (in its comment, since listings do not show references).
WILDCARD_CALLER_REFERENCE = "troy-wildcard-previews"
# Without the router (the local mode) it must serve nothing: an origin path no key starts with
# ("_" never starts an id), rather than the bucket's root with every pipeline's objects.
WILDCARD_IDLE_ORIGIN_PATH = "/_wildcard-idle"


def wildcard_alias() -> str:
    return f"*.{settings.TROY_BASE_DOMAIN.strip('.')}"


def wildcard_spec(router: EdgeAssociations | None) -> DistributionSpec:
    """The wildcard distribution: the same config as a pipeline's, with the router attached the
    same way (``router_apply``); a pipeline's own alias is more specific, so CloudFront answers
    it from the pipeline's distribution."""
    return DistributionSpec(
        caller_reference=WILDCARD_CALLER_REFERENCE,
        comment=f"{WILDCARD_CALLER_REFERENCE}: Troy previews and permalinks ({wildcard_alias()})",
        alias=wildcard_alias(),
        origin_path="" if router is not None else WILDCARD_IDLE_ORIGIN_PATH,
        router=router,
    )


def wildcard_distribution_find() -> Distribution | None:
    return distribution_find(wildcard_spec(None))


def caller_reference_for(pipeline_id: object) -> str:
    """Derived from the pipeline, so a retry of CreateDistribution never makes a second one."""
    return f"troy-{pipeline_id}"


def live_bucket_origin_domain() -> str:
    """The live bucket's regional REST endpoint (what an S3 origin with OAC needs)."""
    return f"{settings.TROY_LIVE_BUCKET}.s3.{settings.AWS_REGION}.amazonaws.com"


def origin_access_control_ensure() -> str:
    """The id of Troy's shared Origin Access Control, created when missing (found by name)."""
    cloudfront = aws.client("cloudfront")
    found = _origin_access_control_find(ORIGIN_ACCESS_CONTROL_NAME)
    if found:
        return found
    try:
        created = cloudfront.create_origin_access_control(
            OriginAccessControlConfig={
                "Name": ORIGIN_ACCESS_CONTROL_NAME,
                "Description": "Troy: CloudFront reads the live bucket with SigV4",
                "SigningProtocol": "sigv4",
                "SigningBehavior": "always",
                "OriginAccessControlOriginType": "s3",
            }
        )
    except ClientError as exc:
        # Another worker created it between our list and create.
        if aws.error_code(exc) == "OriginAccessControlAlreadyExists":
            found = _origin_access_control_find(ORIGIN_ACCESS_CONTROL_NAME)
            if found:
                return found
        raise
    return created["OriginAccessControl"]["Id"]


def _origin_access_control_find(name: str) -> str | None:
    cloudfront = aws.client("cloudfront")
    marker = ""
    while True:
        kwargs = {"Marker": marker} if marker else {}
        page = cloudfront.list_origin_access_controls(**kwargs)["OriginAccessControlList"]
        for item in page.get("Items") or []:
            if item.get("Name") == name:
                return item["Id"]
        marker = page.get("NextMarker") or ""
        if not page.get("IsTruncated") or not marker:
            return None


def distribution_config(spec: DistributionSpec, *, origin_access_control_id: str) -> dict:
    config = {
        "CallerReference": spec.caller_reference,
        "Comment": spec.comment[:128],
        "Enabled": True,
        "Aliases": {"Quantity": 1, "Items": [spec.alias]},
        "DefaultRootObject": "index.html",
        "Origins": {
            "Quantity": 1,
            "Items": [
                {
                    "Id": ORIGIN_ID,
                    "DomainName": live_bucket_origin_domain(),
                    "OriginPath": spec.origin_path,
                    # With OAC the legacy identity must be present and empty.
                    "S3OriginConfig": {"OriginAccessIdentity": ""},
                    "OriginAccessControlId": origin_access_control_id,
                }
            ],
        },
        "DefaultCacheBehavior": {
            "TargetOriginId": ORIGIN_ID,
            "ViewerProtocolPolicy": "redirect-to-https",
            "Compress": True,
            "CachePolicyId": CACHING_OPTIMIZED_POLICY_ID,
            "AllowedMethods": {
                "Quantity": 2,
                "Items": ["GET", "HEAD"],
                "CachedMethods": {"Quantity": 2, "Items": ["GET", "HEAD"]},
            },
        },
        "ViewerCertificate": {
            "ACMCertificateArn": settings.TROY_ACM_CERTIFICATE_ARN,
            "SSLSupportMethod": "sni-only",
            "MinimumProtocolVersion": "TLSv1.2_2021",
        },
        "HttpVersion": "http2and3",
        "IsIPV6Enabled": True,
        "PriceClass": "PriceClass_All",
    }
    if spec.router is not None:
        router_apply(config, spec.router)
    return config


def router_apply(config: dict, router: EdgeAssociations) -> dict:
    """Put the router into a DistributionConfig (in place; also returned): the origin at the
    bucket's root (the router rewrites to ``/{pipeline}/…`` itself), no default root object (the
    origin handler maps ``/`` to the build's index.html), the viewer function, the origin-request
    Lambda without the body (and again for origin responses: the build's custom headers), the
    policy that forwards ``x-troy-build``, and Troy's cache policy (URI and query string in the
    key, that header out of it)."""
    for origin in config["Origins"]["Items"]:
        if origin["Id"] == ORIGIN_ID:
            origin["OriginPath"] = ""
    config["DefaultRootObject"] = ""
    behavior = config["DefaultCacheBehavior"]
    behavior["CachePolicyId"] = router.cache_policy_id
    behavior["OriginRequestPolicyId"] = router.origin_request_policy_id
    behavior["FunctionAssociations"] = {
        "Quantity": 1,
        "Items": [{"FunctionARN": router.function_arn, "EventType": "viewer-request"}],
    }
    behavior["LambdaFunctionAssociations"] = {
        "Quantity": 2,
        "Items": [
            {"LambdaFunctionARN": router.lambda_version_arn, "EventType": event, "IncludeBody": False}
            for event in LAMBDA_EVENTS
        ],
    }
    return config


def runs_router(config: dict, router: EdgeAssociations) -> bool:
    """Whether a DistributionConfig already runs exactly this router."""
    behavior = config.get("DefaultCacheBehavior", {})
    functions = (behavior.get("FunctionAssociations") or {}).get("Items") or []
    lambdas = (behavior.get("LambdaFunctionAssociations") or {}).get("Items") or []
    origins = [o for o in (config.get("Origins") or {}).get("Items") or [] if o.get("Id") == ORIGIN_ID]
    return (
        [(f.get("FunctionARN"), f.get("EventType")) for f in functions] == [(router.function_arn, "viewer-request")]
        and [(f.get("LambdaFunctionARN"), f.get("EventType"), bool(f.get("IncludeBody"))) for f in lambdas]
        == [(router.lambda_version_arn, event, False) for event in LAMBDA_EVENTS]
        and behavior.get("OriginRequestPolicyId") == router.origin_request_policy_id
        and behavior.get("CachePolicyId") == router.cache_policy_id
        and all(not o.get("OriginPath") for o in origins)
        and bool(origins)
    )


def distribution_runs_router(distribution_id: str, router: EdgeAssociations) -> bool | None:
    """Whether the distribution runs ``router``; None when there is no such distribution."""
    answer = _config_or_none(distribution_id)
    return None if answer is None else runs_router(answer["DistributionConfig"], router)


def distribution_attach_router(distribution_id: str, router: EdgeAssociations, *, attempts: int = 3) -> bool | None:
    """Make the distribution run ``router`` (GetDistributionConfig, then UpdateDistribution with
    its ETag; a concurrent change is re-read and tried again). Returns True when it was updated,
    False when it already ran that router, None when there is no such distribution."""
    cloudfront = aws.client("cloudfront")
    for attempt in range(1, attempts + 1):
        answer = _config_or_none(distribution_id)
        if answer is None:
            return None
        config = answer["DistributionConfig"]
        if runs_router(config, router):
            return False
        try:
            cloudfront.update_distribution(
                Id=distribution_id, IfMatch=answer["ETag"], DistributionConfig=router_apply(config, router)
            )
        except ClientError as exc:
            if aws.error_code(exc) == "NoSuchDistribution":
                return None
            if aws.error_code(exc) != "PreconditionFailed" or attempt == attempts:
                raise
            continue
        return True
    raise AssertionError("unreachable")  # the loop returns or raises


def distribution_create(spec: DistributionSpec) -> Distribution:
    """Create the distribution, or return the one an earlier attempt with the same
    CallerReference already made (CloudFront answers DistributionAlreadyExists)."""
    cloudfront = aws.client("cloudfront")
    config = distribution_config(spec, origin_access_control_id=origin_access_control_ensure())
    try:
        answer = cloudfront.create_distribution(DistributionConfig=config)
    except ClientError as exc:
        if aws.error_code(exc) != "DistributionAlreadyExists":
            raise
        existing = distribution_find(spec)
        if existing is None:
            raise DistributionLookupError(
                f"CloudFront reports a distribution with CallerReference {spec.caller_reference} "
                f"but none with it in the comment or with alias {spec.alias} was found."
            ) from exc
        logger.info("distribution %s already existed for %s", existing.id, spec.caller_reference)
        return existing
    return _distribution_from(answer)


def _distribution_from(answer: dict) -> Distribution:
    """A Create/GetDistribution answer as plain data."""
    dist = answer["Distribution"]
    return Distribution(
        id=dist["Id"],
        domain_name=dist["DomainName"],
        status=dist["Status"],
        enabled=dist["DistributionConfig"]["Enabled"],
        etag=answer.get("ETag", ""),
    )


def _config_or_none(distribution_id: str) -> dict | None:
    """GetDistributionConfig's answer (config and ETag), or ``None`` when there is no such distribution."""
    try:
        return aws.client("cloudfront").get_distribution_config(Id=distribution_id)
    except ClientError as exc:
        if aws.error_code(exc) == "NoSuchDistribution":
            return None
        raise


def distribution_find(spec: DistributionSpec) -> Distribution | None:
    """The distribution made with ``spec.caller_reference``, found by listing distributions
    whose comment or alias matches and checking each candidate's CallerReference."""
    cloudfront = aws.client("cloudfront")
    for page in cloudfront.get_paginator("list_distributions").paginate():
        for item in page.get("DistributionList", {}).get("Items") or []:
            aliases = item.get("Aliases", {}).get("Items") or []
            if spec.caller_reference not in (item.get("Comment") or "") and spec.alias not in aliases:
                continue
            config = _config_or_none(item["Id"])
            if config is not None and config["DistributionConfig"].get("CallerReference") == spec.caller_reference:
                return Distribution(
                    id=item["Id"],
                    domain_name=item["DomainName"],
                    status=item["Status"],
                    enabled=config["DistributionConfig"]["Enabled"],
                    etag=config.get("ETag", ""),
                )
    return None


def distribution_get(distribution_id: str) -> Distribution | None:
    """The distribution's state and current ETag; ``None`` when it does not exist."""
    cloudfront = aws.client("cloudfront")
    try:
        answer = cloudfront.get_distribution(Id=distribution_id)
    except ClientError as exc:
        if aws.error_code(exc) == "NoSuchDistribution":
            return None
        raise
    return _distribution_from(answer)


def distribution_disable(distribution_id: str) -> bool:
    """Turn the distribution off (it must be disabled and deployed before it can be deleted).

    Reads the config and its ETag and writes it back with ``Enabled: False`` and ``IfMatch`` set
    to that ETag, so a concurrent change is refused rather than overwritten. Returns ``False``
    when the distribution does not exist."""
    cloudfront = aws.client("cloudfront")
    answer = _config_or_none(distribution_id)
    if answer is None:
        return False
    config = answer["DistributionConfig"]
    if not config.get("Enabled", True):
        return True
    config["Enabled"] = False
    try:
        cloudfront.update_distribution(Id=distribution_id, IfMatch=answer["ETag"], DistributionConfig=config)
    except ClientError as exc:
        if aws.error_code(exc) == "NoSuchDistribution":
            return False
        raise
    return True


def distribution_delete(distribution_id: str, *, etag: str) -> bool:
    """Delete a disabled, deployed distribution. Returns ``False`` when it was already gone."""
    cloudfront = aws.client("cloudfront")
    try:
        cloudfront.delete_distribution(Id=distribution_id, IfMatch=etag)
    except ClientError as exc:
        if aws.error_code(exc) == "NoSuchDistribution":
            return False
        raise
    return True
