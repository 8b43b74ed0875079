"""The edge's pointers (host → build): the database is the source of truth, the CloudFront
KeyValueStore a projection that the ``publish_edge_pointers`` actor writes (docs/edge.md).

With ``TROY_EDGE_POINTERS=local`` the database is the only store (the local edge reads it), so
a pointer counts as published as soon as it is written."""

from __future__ import annotations

import logging
import uuid

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from deployment_service.transactions import send_on_commit
from pipelines.choices import PointerKind
from pipelines.models import Build, EdgePointer, Pipeline, Preview, permalink_host, pointer_value

logger = logging.getLogger(__name__)


def _publishes_locally() -> bool:
    return settings.TROY_EDGE_POINTERS == "local"


def _save(pointer: EdgePointer) -> None:
    if _publishes_locally():
        pointer.published = pointer.value
        pointer.published_at = timezone.now()
    pointer.save()
    if not _publishes_locally():
        send_on_commit("publish_edge_pointers", str(pointer.pipeline_id))


def pointer_set(*, pipeline: Pipeline, build: Build | None) -> EdgePointer:
    """Point the pipeline's host at ``build``'s stored manifest (its content build for a rollback),
    or at nothing. Call inside the transaction that records the change (deployment_finish)."""
    served = None if build is None else (build.content_build_id or build.id)
    return pointer_write(pipeline=pipeline, host=pipeline.domain, kind=PointerKind.LIVE, build_id=served)


def pointer_credentials(*, host: str, kind: str, build_id: uuid.UUID | None) -> str:
    """The visitor credentials a host asks for (docs/edge.md, "Visitor passwords"): the served
    build's basic_auth, plus the preview's password for a preview's host and for the permalink
    of a build deployed to a protected preview (a permalink must not leak a protected preview).
    Either is accepted. "" for an open host."""
    found: list[str] = []
    preview_id = None
    if build_id is not None:
        row = Build.objects.filter(pk=build_id).values_list("visitor_credentials", "preview_id").first()
        if row is not None:
            found.extend(row[0] or [])
            if kind == PointerKind.PERMALINK:
                preview_id = row[1]
    if kind == PointerKind.PREVIEW:
        credential = Preview.objects.filter(host=host).values_list("password_credential", flat=True).first()
    elif preview_id is not None:
        credential = Preview.objects.filter(pk=preview_id).values_list("password_credential", flat=True).first()
    else:
        credential = None
    if credential:
        found.append(credential)
    return " ".join(found)


def pointer_write(*, pipeline: Pipeline, host: str, kind: str, build_id: uuid.UUID | None) -> EdgePointer:
    """Point ``host`` (of ``kind``) at a stored build's manifest, or at nothing; inside the
    transaction that records the change. The host asks for the credentials of what it serves
    (``pointer_credentials``): a build's password goes live and rolls back with the build."""
    pointer, _ = EdgePointer.objects.select_for_update().get_or_create(
        host=host, defaults={"pipeline": pipeline, "kind": kind}
    )
    if pointer.pipeline_id != pipeline.id:
        raise ValueError(f"host {host} already points into pipeline {pointer.pipeline_id}")
    pointer.build_id = build_id
    pointer.kind = kind
    pointer.credentials = pointer_credentials(host=host, kind=kind, build_id=build_id)
    _save(pointer)
    return pointer


def pointers_refresh_credentials(*, preview: Preview) -> list[str]:
    """A preview's password changed: its host and the permalinks of the builds deployed to it
    ask for the new credentials (inside the service's transaction). Returns the hosts changed."""
    pointers = list(
        # of=self: the OR makes the join to the build an outer one, which PostgreSQL cannot lock.
        EdgePointer.objects.select_for_update(of=("self",)).filter(
            Q(host=preview.host, kind=PointerKind.PREVIEW)
            | Q(kind=PointerKind.PERMALINK, build__preview=preview, pipeline_id=preview.pipeline_id)
        )
    )
    changed = []
    for pointer in pointers:
        credentials = pointer_credentials(host=pointer.host, kind=pointer.kind, build_id=pointer.build_id)
        if credentials != pointer.credentials:
            pointer.credentials = credentials
            _save(pointer)
            changed.append(pointer.host)
    return sorted(changed)


def pointer_set_permalink(*, pipeline: Pipeline, build: Build) -> EdgePointer:
    """A stored build is served at its permalink `b{number}--{name}.{base}` whatever is live
    (written in the transaction that records it stored). Retention deletes it with the build."""
    return pointer_write(
        pipeline=pipeline,
        host=permalink_host(number=build.number, name=pipeline.name),
        kind=PointerKind.PERMALINK,
        build_id=build.id,
    )


def pointers_delete(*, pointers: list[EdgePointer]) -> list[str]:
    """Remove pointer rows (a deleted preview, the permalinks of builds retention let go); in the
    kvs mode their hosts are removed from the KeyValueStore on commit (``unpublish_edge_hosts``).
    Returns the hosts removed."""
    hosts = sorted(pointer.host for pointer in pointers)
    if not hosts:
        return []
    EdgePointer.objects.filter(pk__in=[pointer.pk for pointer in pointers]).delete()
    if not _publishes_locally():
        send_on_commit("unpublish_edge_hosts", hosts)
    return hosts


def pointer_ensure(*, pipeline: Pipeline) -> EdgePointer:
    """The pipeline's host is known at the edge (answering "nothing deployed yet" until a build is
    live); called when its distribution is provisioned. Leaves an existing pointer alone."""
    with transaction.atomic():
        pointer, created = EdgePointer.objects.get_or_create(host=pipeline.domain, defaults={"pipeline": pipeline})
        if created:
            _save(pointer)
    return pointer


def pointer_mark_published(*, pointer_id: int, value: str) -> bool:
    """A worker wrote ``value`` for the pointer's host to the KeyValueStore. Recorded only when the
    row still holds that value (a newer one is published by the message its change sent)."""
    with transaction.atomic():
        pointer = EdgePointer.objects.select_for_update().filter(pk=pointer_id).first()
        if pointer is None or pointer.value != value:
            return False
        pointer.published = value
        pointer.published_at = timezone.now()
        pointer.save(update_fields=["published", "published_at", "updated_at"])
    return True


def pointers_resend_unpublished() -> list[str]:
    """The periodic care: pipelines with a pointer not yet confirmed at the edge get their publish
    message again (a message lost between commit and broker must not leave a site on an old
    build). Returns the pipeline ids sent."""
    if _publishes_locally():
        return []
    pending = {
        str(pipeline_id)
        for pipeline_id, build_id, credentials, published, published_at in EdgePointer.objects.values_list(
            "pipeline_id", "build_id", "credentials", "published", "published_at"
        )
        if published_at is None or published != pointer_value(pipeline_id, build_id, credentials)
    }
    for pipeline_id in sorted(pending):
        send_on_commit("publish_edge_pointers", pipeline_id)
    return sorted(pending)


def pipeline_pointer_ids(pipeline_id: uuid.UUID | str) -> list[int]:
    return list(EdgePointer.objects.filter(pipeline_id=pipeline_id).values_list("id", flat=True))
