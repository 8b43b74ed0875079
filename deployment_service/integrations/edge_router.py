"""The router's AWS pieces (docs/edge.md): the KeyValueStore of pointers, the viewer-request
CloudFront Function (``edge/viewer_request.js``), the Lambda@Edge origin handler
(``edge/origin_request.py``) with its role, and the origin request policy that forwards
``x-troy-build`` to it. Each is found by name and made or brought up to date only when it
differs, so running ``router_ensure`` again changes nothing; unchanged code never makes a new
function publication or Lambda version (each carries a hash of what it runs).

``router_ensure`` is for operator commands (``bootstrap_aws``, ``edge_rollout``): it waits for
AWS where AWS makes one wait (a store being created, a Lambda update, a new role becoming
assumable). Workers only call ``router_find``, which reads and never waits.

The CloudFront pieces are global; the Lambda must live in us-east-1 (a Lambda@Edge rule); its pieces are in
``edge_lambda``.
"""

from __future__ import annotations

from dataclasses import dataclass
import hashlib
import logging
import time

from botocore.exceptions import ClientError
from django.conf import settings

from deployment_service import aws
from deployment_service.integrations.cloudfront import EdgeAssociations
from deployment_service.integrations.edge_lambda import (
    EDGE_DIR,
    Note,
    code_sha256,
    lambda_ensure,
    lambda_versions,
    lambda_zip,
    quiet,
    role_ensure,
)

logger = logging.getLogger(__name__)

VIEWER_FUNCTION_FILE = EDGE_DIR / "viewer_request.js"
FUNCTION_RUNTIME = "cloudfront-js-2.0"
ORIGIN_REQUEST_POLICY_NAME = "troy-edge-router"
CACHE_POLICY_NAME = "troy-edge-cache"


class RouterNotPublished(Exception):
    """A piece of the router is missing: ``manage.py bootstrap_aws`` (or ``edge_rollout``) makes it."""


@dataclass(frozen=True)
class Router:
    kvs_arn: str
    function_arn: str
    function_digest: str
    lambda_version_arn: str
    origin_request_policy_id: str
    cache_policy_id: str

    @property
    def version(self) -> str:
        """What ``Pipeline.edge_router`` records: the Lambda version and the function's code."""
        return f"{self.lambda_version_arn}|fn:{self.function_digest[:16]}"

    @property
    def associations(self) -> EdgeAssociations:
        return EdgeAssociations(
            function_arn=self.function_arn,
            lambda_version_arn=self.lambda_version_arn,
            origin_request_policy_id=self.origin_request_policy_id,
            cache_policy_id=self.cache_policy_id,
        )


# --- the code ----------------------------------------------------------------------------------


def viewer_function_code() -> bytes:
    return VIEWER_FUNCTION_FILE.read_bytes()


def function_digest(code: bytes, kvs_arn: str) -> str:
    """The hash of what the function runs: its code and the store it reads."""
    return hashlib.sha256(code + b"\n" + kvs_arn.encode()).hexdigest()


# --- KeyValueStore -----------------------------------------------------------------------------


def kvs_ensure(note: Note = quiet, *, wait_seconds: float = 120) -> str:
    """The store's ARN, created when missing; waits until it is READY (a function can only be
    associated with a ready store)."""
    cloudfront = aws.client("cloudfront")
    name = settings.TROY_EDGE_KVS_NAME
    try:
        store = cloudfront.describe_key_value_store(Name=name)["KeyValueStore"]
        note("found", f"cloudfront key value store {name}")
    except ClientError as exc:
        if aws.error_code(exc) != "EntityNotFound":
            raise
        store = cloudfront.create_key_value_store(Name=name, Comment="Troy: host -> live build")["KeyValueStore"]
        note("made", f"cloudfront key value store {name}")
    deadline = time.monotonic() + wait_seconds
    while store.get("Status", "READY") != "READY":
        if store.get("Status") == "PROVISIONING_FAILED" or time.monotonic() > deadline:
            raise RouterNotPublished(f"KeyValueStore {name} is {store.get('Status')}: {store.get('FailureReason', '')}")
        time.sleep(2)  # an operator command, not a worker
        store = cloudfront.describe_key_value_store(Name=name)["KeyValueStore"]
    return store["ARN"]


def _kvs_arn() -> str | None:
    try:
        return aws.client("cloudfront").describe_key_value_store(Name=settings.TROY_EDGE_KVS_NAME)["KeyValueStore"][
            "ARN"
        ]
    except ClientError as exc:
        if aws.error_code(exc) == "EntityNotFound":
            return None
        raise


# --- CloudFront Function -----------------------------------------------------------------------


@dataclass(frozen=True)
class _FunctionStage:
    arn: str
    etag: str
    comment: str


def _function_comment(digest: str) -> str:
    return f"Troy viewer-request router {digest}"


def _function_stage(name: str, stage: str) -> _FunctionStage | None:
    """The function at ``stage``, or None when it has none. An answer for another stage than
    asked counts as none (an emulator that knows no stages answers DEVELOPMENT for LIVE)."""
    try:
        answer = aws.client("cloudfront").describe_function(Name=name, Stage=stage)
    except ClientError as exc:
        if aws.error_code(exc) in {"NoSuchFunctionExists", "EntityNotFound"}:
            return None
        raise
    summary = answer["FunctionSummary"]
    if summary["FunctionMetadata"].get("Stage", stage) != stage:
        return None
    return _FunctionStage(
        arn=summary["FunctionMetadata"]["FunctionARN"],
        etag=answer.get("ETag", ""),
        comment=summary["FunctionConfig"].get("Comment", ""),
    )


def function_ensure(kvs_arn: str, note: Note = quiet) -> tuple[str, str]:
    """(function ARN, digest) of the viewer function running this checkout's code at LIVE:
    created or updated in DEVELOPMENT and published only when the LIVE one differs."""
    cloudfront = aws.client("cloudfront")
    name = settings.TROY_EDGE_FUNCTION_NAME
    code = viewer_function_code()
    digest = function_digest(code, kvs_arn)
    comment = _function_comment(digest)
    live = _function_stage(name, "LIVE")
    if live is not None and live.comment == comment:
        note("found", f"cloudfront function {name} (live, {digest[:12]})")
        return live.arn, digest
    config = {
        "Comment": comment,
        "Runtime": FUNCTION_RUNTIME,
        "KeyValueStoreAssociations": {"Quantity": 1, "Items": [{"KeyValueStoreARN": kvs_arn}]},
    }
    development = _function_stage(name, "DEVELOPMENT")
    if development is None:
        cloudfront.create_function(Name=name, FunctionConfig=config, FunctionCode=code)
    elif development.comment != comment:
        cloudfront.update_function(Name=name, IfMatch=development.etag, FunctionConfig=config, FunctionCode=code)
    # UpdateFunction's ETag header is misnamed in the API model, so read it back.
    development = _function_stage(name, "DEVELOPMENT")
    if development is None:
        raise RouterNotPublished(f"CloudFront function {name} vanished while it was being published")
    cloudfront.publish_function(Name=name, IfMatch=development.etag)
    note("made", f"cloudfront function {name} (published, {digest[:12]})")
    return development.arn, digest


# --- origin request policy ---------------------------------------------------------------------


def origin_request_policy_config() -> dict:
    """Forward what the origin handler reads: the build (set by the viewer function) and the
    query string (kept on the folder redirect). Not part of the cache key: the cache policy
    (CachingOptimized) decides that, and leaves both out."""
    return {
        "Name": ORIGIN_REQUEST_POLICY_NAME,
        "Comment": "Troy: forward x-troy-build and the query string to the origin router",
        "HeadersConfig": {"HeaderBehavior": "whitelist", "Headers": {"Quantity": 1, "Items": ["x-troy-build"]}},
        "CookiesConfig": {"CookieBehavior": "none"},
        "QueryStringsConfig": {"QueryStringBehavior": "all"},
    }


@dataclass(frozen=True)
class _PolicyKind:
    """One of the two CloudFront policy kinds the router makes: their API differs only in names."""

    noun: str  # "OriginRequestPolicy" / "CachePolicy": the shapes' names
    snake: str  # "origin_request_policy" / "cache_policy": the operations' names
    plural: str  # "origin_request_policies" / "cache_policies"
    label: str  # for the report


ORIGIN_REQUEST_POLICY = _PolicyKind(
    "OriginRequestPolicy", "origin_request_policy", "origin_request_policies", "origin request policy"
)
CACHE_POLICY = _PolicyKind("CachePolicy", "cache_policy", "cache_policies", "cache policy")


def _policy_find(kind: _PolicyKind, name: str) -> tuple[str, dict] | None:
    """(id, config) of the account's custom policy of that kind and name, or None."""
    cloudfront = aws.client("cloudfront")
    marker = ""
    while True:
        page = getattr(cloudfront, f"list_{kind.plural}")(Type="custom", **({"Marker": marker} if marker else {}))
        listing = page[f"{kind.noun}List"]
        for item in listing.get("Items") or []:
            policy = item[kind.noun]
            if policy[f"{kind.noun}Config"]["Name"] == name:
                return policy["Id"], policy[f"{kind.noun}Config"]
        marker = listing.get("NextMarker") or ""
        if not marker:
            return None


def _policy_ensure(kind: _PolicyKind, wanted: dict, note: Note) -> str:
    """Create the policy, or update it when its config differs from ``wanted``; its id."""
    cloudfront = aws.client("cloudfront")
    config_key = f"{kind.noun}Config"
    found = _policy_find(kind, wanted["Name"])
    if found is None:
        created = getattr(cloudfront, f"create_{kind.snake}")(**{config_key: wanted})
        note("made", f"cloudfront {kind.label} {wanted['Name']}")
        return created[kind.noun]["Id"]
    policy_id, current = found
    if current != wanted:
        etag = getattr(cloudfront, f"get_{kind.snake}_config")(Id=policy_id)["ETag"]
        getattr(cloudfront, f"update_{kind.snake}")(Id=policy_id, IfMatch=etag, **{config_key: wanted})
        note("made", f"cloudfront {kind.label} {wanted['Name']} (updated)")
    else:
        note("found", f"cloudfront {kind.label} {wanted['Name']}")
    return policy_id


def origin_request_policy_ensure(note: Note = quiet) -> str:
    return _policy_ensure(ORIGIN_REQUEST_POLICY, origin_request_policy_config(), note)


def _origin_request_policy_find() -> tuple[str, dict] | None:
    return _policy_find(ORIGIN_REQUEST_POLICY, ORIGIN_REQUEST_POLICY_NAME)


def cache_policy_config() -> dict:
    """What CloudFront caches by: the URI (which holds the pipeline, the build and, for
    navigations, the `_nav` marker: edge/viewer_request.js) and the query string, since a
    redirect may carry it (the folder redirect, `_redirects` query conditions). No header or
    cookie: `x-troy-build` stays out of the key, so a fingerprinted asset is cached once for
    every build. Compressed as CloudFront's CachingOptimized; TTLs as it, the objects' own
    Cache-Control deciding within them."""
    return {
        "Name": CACHE_POLICY_NAME,
        "Comment": "Troy: cache by URI and query string; x-troy-build stays out of the key",
        "DefaultTTL": 86400,
        "MaxTTL": 31536000,
        "MinTTL": 0,
        "ParametersInCacheKeyAndForwardedToOrigin": {
            "EnableAcceptEncodingGzip": True,
            "EnableAcceptEncodingBrotli": True,
            "HeadersConfig": {"HeaderBehavior": "none"},
            "CookiesConfig": {"CookieBehavior": "none"},
            "QueryStringsConfig": {"QueryStringBehavior": "all"},
        },
    }


def cache_policy_ensure(note: Note = quiet) -> str:
    return _policy_ensure(CACHE_POLICY, cache_policy_config(), note)


def _cache_policy_find() -> tuple[str, dict] | None:
    return _policy_find(CACHE_POLICY, CACHE_POLICY_NAME)


# --- the router as a whole ---------------------------------------------------------------------


def router_ensure(note: Note = quiet) -> Router:
    """Make or update every piece to this checkout's code; idempotent (operator commands only)."""
    kvs_arn = kvs_ensure(note)
    function_arn, digest = function_ensure(kvs_arn, note)
    version_arn = lambda_ensure(role_ensure(note), note)
    policy_id = origin_request_policy_ensure(note)
    cache_id = cache_policy_ensure(note)
    return Router(kvs_arn, function_arn, digest, version_arn, policy_id, cache_id)


def router_find() -> Router:
    """The router as published (the LIVE function, the newest Lambda version), for workers that
    attach it to a distribution. Reads only; raises RouterNotPublished naming what is missing."""
    kvs_arn = _kvs_arn()
    if kvs_arn is None:
        raise RouterNotPublished(
            f"KeyValueStore {settings.TROY_EDGE_KVS_NAME} does not exist; run `manage.py bootstrap_aws`."
        )
    live = _function_stage(settings.TROY_EDGE_FUNCTION_NAME, "LIVE")
    if live is None:
        raise RouterNotPublished(
            f"CloudFront function {settings.TROY_EDGE_FUNCTION_NAME} is not published; run `manage.py bootstrap_aws`."
        )
    try:
        versions = lambda_versions()
    except ClientError as exc:
        if aws.error_code(exc) != "ResourceNotFoundException":
            raise
        versions = []
    if not versions:
        raise RouterNotPublished(
            f"Lambda {settings.TROY_EDGE_LAMBDA_NAME} has no published version; run `manage.py bootstrap_aws`."
        )
    policy = _origin_request_policy_find()
    if policy is None:
        raise RouterNotPublished(
            f"Origin request policy {ORIGIN_REQUEST_POLICY_NAME} is missing; run `manage.py bootstrap_aws`."
        )
    cache = _cache_policy_find()
    if cache is None:
        raise RouterNotPublished(f"Cache policy {CACHE_POLICY_NAME} is missing; run `manage.py bootstrap_aws`.")
    digest = live.comment.rsplit(" ", 1)[-1]
    return Router(kvs_arn, live.arn, digest, versions[0]["FunctionArn"], policy[0], cache[0])


@dataclass(frozen=True)
class RouterPlan:
    """What ``router_ensure`` would change, for a dry run: the router as published (None when a
    piece is missing, named in ``missing``) and whether each code piece already runs this
    checkout's code."""

    published: Router | None
    missing: str
    function_current: bool
    lambda_current: bool

    @property
    def current(self) -> bool:
        return self.published is not None and self.function_current and self.lambda_current


def router_plan() -> RouterPlan:
    """Reads only (no publish): compare what is published with this checkout's code."""
    try:
        published = router_find()
    except RouterNotPublished as exc:
        return RouterPlan(None, str(exc), False, False)
    digest = function_digest(viewer_function_code(), published.kvs_arn)
    versions = lambda_versions()
    newest_sha = versions[0].get("CodeSha256") if versions else None
    return RouterPlan(
        published,
        "",
        function_current=published.function_digest == digest,
        lambda_current=newest_sha == code_sha256(lambda_zip()),
    )
