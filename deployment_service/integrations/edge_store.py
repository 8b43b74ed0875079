"""The CloudFront KeyValueStore that holds the edge's pointers (host → "{pipeline}/{build}").

The store is found by name through CloudFront's control API (``describe_key_value_store``), then
read and written through its data API, the ``cloudfront-keyvaluestore`` client (signed with
SigV4A, which botocore does through ``awscrt``). Every write names the store's current ETag
(``IfMatch``); when another writer got there first the store answers ``ConflictException``, and
the write re-reads the ETag and tries again. Plain strings in and out; no models.

Limits (CloudFront quotas, docs/edge.md): an update changes at most 50 keys and 3 MB; a key is at
most 512 bytes and a value 1 KB; the store at most 5 MB.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
import logging

from botocore.exceptions import ClientError
from django.conf import settings

from deployment_service import aws

logger = logging.getLogger(__name__)

MAX_KEYS_PER_UPDATE = 50
MAX_BYTES_PER_UPDATE = 3 * 1024 * 1024
MAX_KEY_BYTES = 512
MAX_VALUE_BYTES = 1024
# ETag conflicts are other writers (another worker publishing another pipeline's pointer): each
# retry re-reads the ETag, so a handful is plenty; past it the error goes to the actor's retries.
CONFLICT_ATTEMPTS = 5


class KeyValueStoreNotFound(Exception):
    """No KeyValueStore of that name: ``manage.py bootstrap_aws`` creates it."""


def store_arn(name: str | None = None) -> str:
    """The store's ARN, found by name (``TROY_EDGE_KVS_NAME`` by default)."""
    name = name or settings.TROY_EDGE_KVS_NAME
    try:
        answer = aws.client("cloudfront").describe_key_value_store(Name=name)
    except ClientError as exc:
        if aws.error_code(exc) in {"EntityNotFound", "NoSuchResource", "ResourceNotFoundException"}:
            raise KeyValueStoreNotFound(
                f"CloudFront KeyValueStore {name} does not exist; run `manage.py bootstrap_aws`."
            ) from exc
        raise
    return answer["KeyValueStore"]["ARN"]


def _data():
    return aws.client("cloudfront-keyvaluestore")


def _etag(arn: str) -> str:
    return _data().describe_key_value_store(KvsARN=arn)["ETag"]


def _check(key: str, value: str | None = None) -> int:
    """The bytes the pair counts for in an update; refuses what the store would refuse."""
    size = len(key.encode())
    if not key or size > MAX_KEY_BYTES:
        raise ValueError(f"KeyValueStore key {key!r} must be 1 to {MAX_KEY_BYTES} bytes")
    if value is not None:
        value_size = len(value.encode())
        if value_size == 0 or value_size > MAX_VALUE_BYTES:
            raise ValueError(f"KeyValueStore value for {key!r} must be 1 to {MAX_VALUE_BYTES} bytes")
        size += value_size
    return size


def _batches(puts: Mapping[str, str], deletes: Iterable[str]) -> Iterator[tuple[list[dict], list[dict]]]:
    """(Puts, Deletes) lists of at most 50 keys and 3 MB together, in a stable order."""
    batch_puts: list[dict] = []
    batch_deletes: list[dict] = []
    size = 0
    items: list[tuple[str, str | None]] = [(k, puts[k]) for k in sorted(puts)]
    items += [(k, None) for k in sorted(set(deletes) - set(puts))]
    for key, value in items:
        item_size = _check(key, value)
        if batch_puts or batch_deletes:
            full = len(batch_puts) + len(batch_deletes) >= MAX_KEYS_PER_UPDATE
            if full or size + item_size > MAX_BYTES_PER_UPDATE:
                yield batch_puts, batch_deletes
                batch_puts, batch_deletes, size = [], [], 0
        if value is None:
            batch_deletes.append({"Key": key})
        else:
            batch_puts.append({"Key": key, "Value": value})
        size += item_size
    if batch_puts or batch_deletes:
        yield batch_puts, batch_deletes


def _update(arn: str, puts: list[dict], deletes: list[dict], etag: str) -> str:
    """One UpdateKeys call, re-reading the ETag on a conflict. Returns the store's new ETag."""
    kwargs: dict[str, object] = {"KvsARN": arn}
    if puts:
        kwargs["Puts"] = puts
    if deletes:
        kwargs["Deletes"] = deletes
    for attempt in range(1, CONFLICT_ATTEMPTS + 1):
        try:
            return _data().update_keys(IfMatch=etag, **kwargs)["ETag"]
        except ClientError as exc:
            if aws.error_code(exc) != "ConflictException" or attempt == CONFLICT_ATTEMPTS:
                raise
            logger.info("KeyValueStore changed under us (attempt %d); reading its ETag again", attempt)
            etag = _etag(arn)
    raise AssertionError("unreachable")  # the loop returns or raises


def keys_update(*, puts: Mapping[str, str] | None = None, deletes: Iterable[str] = (), arn: str | None = None) -> int:
    """Write ``puts`` (key → value) and remove ``deletes`` in as few UpdateKeys calls as the
    limits allow (a key in both is put). Each call is all-or-nothing; a failure part way leaves
    the earlier batches written, which is safe because every write here is idempotent. Returns
    the number of UpdateKeys calls made."""
    puts = dict(puts or {})
    batches = list(_batches(puts, deletes))
    if not batches:
        return 0
    arn = arn or store_arn()
    etag = _etag(arn)
    for batch_puts, batch_deletes in batches:
        etag = _update(arn, batch_puts, batch_deletes, etag)
    return len(batches)


def key_get(key: str, *, arn: str | None = None) -> str | None:
    """The value the store holds for ``key``, or None when it has no such key."""
    arn = arn or store_arn()
    try:
        return _data().get_key(KvsARN=arn, Key=key)["Value"]
    except ClientError as exc:
        if aws.error_code(exc) == "ResourceNotFoundException":
            return None
        raise


def keys_delete(keys: Iterable[str], *, arn: str | None = None) -> list[str]:
    """Remove ``keys`` from the store; keys it does not hold are left out of the update (the
    API documents no answer for deleting a missing key), so this is safe to repeat. Returns the
    keys that were removed."""
    keys = sorted(set(keys))
    if not keys:
        return []
    arn = arn or store_arn()
    present = [key for key in keys if key_get(key, arn=arn) is not None]
    if present:
        keys_update(deletes=present, arn=arn)
    return present
