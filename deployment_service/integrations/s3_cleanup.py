"""Removing objects from S3, once: a pipeline's live files and zips when it is deleted, the
files a deploy takes down, and the manifests and blobs retention lets go. Deleting a key that
does not exist succeeds in S3, so all are safe to repeat."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime

from deployment_service import aws

DELETE_BATCH = 1000  # DeleteObjects takes at most 1000 keys
LIST_PAGE_SIZE = 1000  # ListObjectsV2 answers at most 1000 keys a page


class S3DeleteError(Exception):
    """DeleteObjects answered 200 but refused some keys (it reports them per key)."""


def _batches(keys: Iterable[str]) -> Iterator[list[str]]:
    size = DELETE_BATCH
    batch: list[str] = []
    for key in keys:
        batch.append(key)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def _delete_batch(bucket: str, keys: list[str]) -> None:
    answer = aws.client("s3").delete_objects(
        Bucket=bucket, Delete={"Objects": [{"Key": key} for key in keys], "Quiet": True}
    )
    errors = answer.get("Errors") or []
    if errors:
        first = errors[0]
        raise S3DeleteError(
            f"DeleteObjects on {bucket} refused {len(errors)} key(s), e.g. "
            f"{first.get('Key')}: {first.get('Code')}: {first.get('Message', '')}"
        )


def _keys_under(bucket: str, prefix: str) -> Iterator[str]:
    paginator = aws.client("s3").get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=bucket, Prefix=prefix, PaginationConfig={"PageSize": LIST_PAGE_SIZE}):
        for item in page.get("Contents", []):
            yield item["Key"]


@dataclass(frozen=True)
class ListedObject:
    key: str
    last_modified: datetime  # timezone-aware, as S3 reports it


def objects_under(*, bucket: str, prefix: str) -> Iterator[ListedObject]:
    """Every object whose key starts with ``prefix``, page by page (1000 keys a request), with
    its LastModified: what retention weighs against its grace before deleting anything."""
    paginator = aws.client("s3").get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=bucket, Prefix=prefix, PaginationConfig={"PageSize": LIST_PAGE_SIZE}):
        for item in page.get("Contents", []):
            yield ListedObject(key=item["Key"], last_modified=item["LastModified"])


def prefix_delete(*, bucket: str, prefix: str) -> int:
    """Delete every object whose key starts with ``prefix``; returns how many.

    ``prefix`` must be non-empty and end with ``/`` so that one pipeline's id can never match
    another's files or the whole bucket."""
    if not prefix or not prefix.endswith("/") or prefix == "/":
        raise ValueError(f"refusing to delete under prefix {prefix!r}")
    # Listing is collected first: deleting while paginating could skip keys on some backends.
    keys = list(_keys_under(bucket, prefix))
    for batch in _batches(keys):
        _delete_batch(bucket, batch)
    return len(keys)


def keys_delete(*, bucket: str, keys: Iterable[str]) -> int:
    """Delete the given keys (missing ones are fine); returns how many were asked for."""
    unique = sorted({key for key in keys if key})
    for batch in _batches(unique):
        _delete_batch(bucket, batch)
    return len(unique)


def level_list(*, bucket: str, prefix: str) -> tuple[list[str], list[str]]:
    """One level under ``prefix`` (ListObjectsV2 with a ``/`` delimiter): the object keys directly
    in it, and the folder prefixes (each ending in ``/``) below it, without listing inside them."""
    files: list[str] = []
    folders: list[str] = []
    paginator = aws.client("s3").get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=bucket, Prefix=prefix, Delimiter="/"):
        files += [item["Key"] for item in page.get("Contents", [])]
        folders += [item["Prefix"] for item in page.get("CommonPrefixes", [])]
    return files, folders
