"""CloudFront invalidation of the paths a deploy changed or deleted.

Paths are those a visitor requests: ``/about/team.html``, and for an ``index.html`` also its
folder with and without the trailing slash (``/about/`` and ``/about``; ``/`` for the root).
Past ``TROY_INVALIDATION_MAX_PATHS`` they collapse to wildcards per folder (deepest grouping that
fits), then to ``/*``: CloudFront bills per path and a wildcard counts as one.

The build id is the CallerReference, so a retried deploy never creates a second invalidation:
CloudFront answers ``InvalidationBatchAlreadyExists`` when the same reference comes with other
paths, and the existing invalidation is looked up and reused.
"""

from __future__ import annotations

from collections.abc import Iterable
import logging
from urllib.parse import quote

from botocore.exceptions import ClientError

from deployment_service import aws

logger = logging.getLogger(__name__)

# RFC 3986 unreserved and sub-delims that CloudFront takes as they are; the rest is %-encoded
# (including "*", which would otherwise act as a wildcard, and spaces).
_SAFE = "/-_.~!$&'()+,;=:@"


def _url(path: str) -> str:
    return "/" + quote(path, safe=_SAFE)


def invalidation_paths_for(changed: Iterable[str]) -> list[str]:
    """Request paths for changed or deleted site files (``dir/index.html`` → three paths)."""
    paths: set[str] = set()
    for path in changed:
        paths.add(_url(path))
        folder, _, name = path.rpartition("/")
        if name == "index.html":
            if folder:
                paths.add(_url(folder) + "/")
                paths.add(_url(folder))
            else:
                paths.add("/")
    return sorted(paths)


def collapse_paths(paths: list[str], *, max_paths: int) -> list[str]:
    """At most ``max_paths`` paths covering ``paths``: folder wildcards, deepest first, else ``/*``."""
    paths = sorted(set(paths))
    if len(paths) <= max_paths:
        return paths
    depth = max(path.count("/") for path in paths) - 1
    while depth >= 1:
        collapsed: set[str] = set()
        for path in paths:
            if path == "/":
                collapsed.add(path)
                continue
            segments = path.strip("/").split("/")
            # Files deeper than ``depth`` folders are covered by their folder's wildcard at that
            # depth; "/docs/" (the folder page) is inside "/docs/*" too.
            if len(segments) > depth or (path.endswith("/") and len(segments) == depth):
                collapsed.add("/" + "/".join(segments[:depth]) + "/*")
            else:
                collapsed.add(path)
        if len(collapsed) <= max_paths:
            return sorted(collapsed)
        depth -= 1
    return ["/*"]


def _find_existing(distribution_id: str, caller_reference: str) -> str | None:
    cloudfront = aws.client("cloudfront")
    for page in cloudfront.get_paginator("list_invalidations").paginate(DistributionId=distribution_id):
        for item in page.get("InvalidationList", {}).get("Items", []) or []:
            found = cloudfront.get_invalidation(DistributionId=distribution_id, Id=item["Id"])["Invalidation"]
            if found["InvalidationBatch"]["CallerReference"] == caller_reference:
                return found["Id"]
    return None


def invalidation_create(*, distribution_id: str, paths: list[str], caller_reference: str) -> str:
    """Create (or find, on a retry) the invalidation; returns its id."""
    cloudfront = aws.client("cloudfront")
    batch = {"Paths": {"Quantity": len(paths), "Items": paths}, "CallerReference": caller_reference}
    try:
        answer = cloudfront.create_invalidation(DistributionId=distribution_id, InvalidationBatch=batch)
        return answer["Invalidation"]["Id"]
    except ClientError as exc:
        if aws.error_code(exc) != "InvalidationBatchAlreadyExists":
            raise
        existing = _find_existing(distribution_id, caller_reference)
        if existing is None:
            raise
        logger.info("invalidation %s already exists for %s (a retried deploy)", existing, caller_reference)
        return existing
