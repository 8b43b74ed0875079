"""GitHub webhook deliveries: verify, store once, and (in a worker) start builds for pushes.

The web side (:func:`github_delivery_receive`) only checks the signature and the shape, stores
the delivery and enqueues its handling on commit: no GitHub or AWS call, so it answers in
milliseconds. Handling (:func:`github_delivery_handle`) runs in a worker and is idempotent: the
delivery row is locked and ``processed_at`` is the guard, so a repeated message starts nothing.

Answers (the view turns them into HTTP):

* no ``GITHUB_WEBHOOK_SECRET`` configured → 503 ``webhook_not_configured`` (never accept unsigned);
* signature missing → 401, wrong → 403, both ``invalid_signature``; nothing stored;
* missing headers, a body that is not a JSON object, a push without its fields → 400 ``invalid_delivery``;
* ``ping`` → 200 ``pong`` (not stored);
* a ``X-GitHub-Delivery`` seen before → 200 ``duplicate``, nothing new;
* ``push``, ``pull_request``, ``installation``, ``installation_repositories`` → stored, handled in
  a worker → 202 ``queued`` (installation events keep each installation's repository list,
  hooks.github_installations; pushes to preview branches and pull requests build previews,
  hooks.github_previews);
* any other event → stored as handled-and-ignored (an audit trail of what GitHub sent) → 200 ``ignored``.
"""

from __future__ import annotations

from dataclasses import dataclass
import hashlib
import hmac
import logging
import re
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from rest_framework import status as http_status

from deployment_service.exceptions import ApplicationError
from deployment_service.limits import parse_json_body
from deployment_service.transactions import send_on_commit
from hooks.exceptions import InvalidDelivery, InvalidSignature, SignatureMismatch, WebhookNotConfigured
from hooks.github_installations import installation_event_handle
from hooks.github_previews import github_pull_request_parse, preview_push_handle, pull_request_handle
from hooks.models import GithubDelivery
from pipelines.models import Pipeline
from pipelines.services import pipeline_record_installation, preview_branch_matches, push_build_request

logger = logging.getLogger(__name__)

_SHA_RE = re.compile(r"[0-9a-f]{40}")
_DELIVERY_ID_RE = re.compile(r"[A-Za-z0-9._:-]{1,128}")
_EVENT_RE = re.compile(r"[a-z_]{1,64}")
BRANCH_PREFIX = "refs/heads/"
# Events handled in a worker; any other is stored as handled-and-ignored.
HANDLED_EVENTS = ("push", "pull_request", "installation", "installation_repositories")
TAG_PREFIX = "refs/tags/"


# --- signature -----------------------------------------------------------------------------------


def github_signature(*, secret: str, body: bytes) -> str:
    """The ``X-Hub-Signature-256`` value GitHub sends for ``body``: HMAC-SHA256 with the secret."""
    return "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def github_signature_valid(*, secret: str, body: bytes, signature: str | None) -> bool:
    """Constant-time comparison over the raw body's HMAC. An empty secret verifies nothing."""
    if not secret or not signature:
        return False
    expected = github_signature(secret=secret, body=body).encode("ascii")
    return hmac.compare_digest(expected, signature.strip().encode("utf-8", "replace"))


# --- push payloads -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Push:
    ref: str
    after: str
    repository: str
    deleted: bool
    installation_id: int | None
    pusher: str

    @property
    def branch(self) -> str | None:
        return self.ref[len(BRANCH_PREFIX) :] if self.ref.startswith(BRANCH_PREFIX) else None


def github_push_parse(payload: Any) -> Push:
    """The fields of a push delivery Troy uses; :class:`InvalidDelivery` when one is missing."""
    if not isinstance(payload, dict):
        raise InvalidDelivery("A push delivery is a JSON object.")
    ref, after = payload.get("ref"), payload.get("after")
    repository = payload.get("repository")
    full_name = repository.get("full_name") if isinstance(repository, dict) else None
    problems = []
    if not isinstance(ref, str) or not ref.startswith("refs/"):
        problems.append("ref")
    if not isinstance(after, str) or not _SHA_RE.fullmatch(after):
        problems.append("after")
    if not isinstance(full_name, str) or full_name.count("/") != 1:
        problems.append("repository.full_name")
    deleted = payload.get("deleted", False)
    if not isinstance(deleted, bool):
        problems.append("deleted")
    installation = payload.get("installation")
    installation_id = installation.get("id") if isinstance(installation, dict) else None
    if installation_id is not None and (not isinstance(installation_id, int) or isinstance(installation_id, bool)):
        problems.append("installation.id")
    if problems:
        raise InvalidDelivery(f"The push delivery lacks valid {', '.join(problems)}.", extra={"fields": problems})
    pusher = payload.get("pusher") if isinstance(payload.get("pusher"), dict) else {}
    sender = payload.get("sender") if isinstance(payload.get("sender"), dict) else {}
    name = pusher.get("name") or sender.get("login") or "unknown"
    return Push(
        ref=ref,
        after=after,
        repository=full_name,
        deleted=deleted or set(after) == {"0"},
        installation_id=installation_id,
        pusher=str(name)[:100],
    )


# --- receiving (web request) ---------------------------------------------------------------------


@dataclass(frozen=True)
class Receipt:
    status: str  # pong, duplicate, queued, ignored
    http_status: int
    delivery_id: str = ""


def github_delivery_receive(
    *, body: bytes, signature: str | None, event: str | None, delivery_id: str | None
) -> Receipt:
    """Verify and store one delivery; enqueue its handling on commit. Raises an
    :class:`ApplicationError` (with its HTTP status) for anything refused; nothing is stored then."""
    secret = settings.GITHUB_WEBHOOK_SECRET
    if not secret:
        raise WebhookNotConfigured("GitHub deliveries are refused: GITHUB_WEBHOOK_SECRET is not set.")
    if not signature:
        raise InvalidSignature("The X-Hub-Signature-256 header is missing.")
    if not github_signature_valid(secret=secret, body=body, signature=signature):
        raise SignatureMismatch("The X-Hub-Signature-256 signature does not match the body.")

    if not event or not _EVENT_RE.fullmatch(event):
        raise InvalidDelivery("The X-GitHub-Event header is missing or malformed.")
    if not delivery_id or not _DELIVERY_ID_RE.fullmatch(delivery_id):
        raise InvalidDelivery("The X-GitHub-Delivery header is missing or malformed.")
    payload = parse_json_body(body, error=InvalidDelivery)
    if not isinstance(payload, dict):
        raise InvalidDelivery("The body is not a JSON object.")

    if event == "ping":
        return Receipt("pong", http_status.HTTP_200_OK, delivery_id)
    if event == "push":
        github_push_parse(payload)  # refuse a malformed push now, not in the worker
    if event == "pull_request":
        github_pull_request_parse(payload)

    with transaction.atomic():
        if GithubDelivery.objects.filter(delivery_id=delivery_id).exists():
            return Receipt("duplicate", http_status.HTTP_200_OK, delivery_id)
        handled_now = event not in HANDLED_EVENTS
        try:
            with transaction.atomic():
                delivery = GithubDelivery.objects.create(
                    delivery_id=delivery_id,
                    event=event,
                    payload=payload,
                    processed_at=timezone.now() if handled_now else None,
                    result=f"ignored: Troy does not act on {event} events" if handled_now else "",
                )
        except IntegrityError:  # the same delivery arriving twice at once
            return Receipt("duplicate", http_status.HTTP_200_OK, delivery_id)
        if handled_now:
            return Receipt("ignored", http_status.HTTP_200_OK, delivery_id)
        send_on_commit("handle_github_delivery", delivery.pk)
    return Receipt("queued", http_status.HTTP_202_ACCEPTED, delivery_id)


# --- handling (worker) ---------------------------------------------------------------------------


def github_delivery_handle(*, delivery_pk: int, changed_files: list[str] | None = None) -> str | None:
    """Handle a stored delivery once. Returns what was done (also kept in ``result``), or None
    when the delivery is gone or was handled already (a repeated message: nothing happens).
    ``changed_files``: what a push (or a pull request) changed, when known (hooks.github_push_paths),
    for watch paths."""
    with transaction.atomic():
        delivery = GithubDelivery.objects.select_for_update().filter(pk=delivery_pk).first()
        if delivery is None:
            logger.info("GitHub delivery %s is gone: nothing to handle", delivery_pk)
            return None
        if delivery.processed_at is not None:
            logger.info("GitHub delivery %s was handled at %s", delivery.delivery_id, delivery.processed_at)
            return None
        if delivery.event in HANDLED_EVENTS:
            try:
                if delivery.event == "push":
                    result = _push_handle(github_push_parse(delivery.payload), changed_files=changed_files)
                elif delivery.event == "pull_request":
                    result = pull_request_handle(
                        github_pull_request_parse(delivery.payload), changed_files=changed_files
                    )
                else:
                    result = installation_event_handle(delivery.event, delivery.payload)
            except InvalidDelivery as exc:
                result = f"ignored: {exc.detail}"
        else:
            result = f"ignored: Troy does not act on {delivery.event} events"
        delivery.processed_at = timezone.now()
        delivery.result = result
        delivery.save(update_fields=["processed_at", "result"])
    logger.info("GitHub delivery %s (%s): %s", delivery.delivery_id, delivery.event, result)
    return result


def _push_handle(push: Push, *, changed_files: list[str] | None = None) -> str:
    """Start a build on every pipeline that deploys the pushed branch, and a preview build on every
    pipeline whose ``preview_branches`` match it (a deleted one closes its preview). Runs inside
    the delivery's transaction, so a crash part-way leaves nothing half done and the retry starts
    afresh. Pipelines are locked in name order (as every handler does), so two deliveries never
    deadlock."""
    where = f"{push.repository} {push.ref}"
    branch = push.branch
    if branch is None:
        if push.deleted:
            return f"ignored: {where} was deleted"
        return f"ignored: {where} is a tag" if push.ref.startswith(TAG_PREFIX) else f"ignored: {where} is not a branch"

    if push.installation_id is None:
        return f"ignored: the push to {where} names no installation"
    # Only pipelines whose owner holds the pushing installation: naming a repository grants nothing.
    pipelines = list(
        Pipeline.objects.filter(
            repository__iexact=push.repository,
            owner__github_installations__installation_id=push.installation_id,
            owner__github_installations__suspended_at=None,
            owner__github_installations__removed_at=None,
        ).order_by("name")
    )
    notes = []
    for pipeline in pipelines:
        try:
            pipeline_record_installation(pipeline_id=pipeline.id, installation_id=push.installation_id)
        except ApplicationError:  # deleted since it was listed
            continue
        if pipeline.branch != branch:
            if preview_branch_matches(pipeline.preview_branches, branch):
                notes.append(
                    preview_push_handle(
                        pipeline,
                        branch=branch,
                        commit_sha=push.after,
                        deleted=push.deleted,
                        actor=f"github:{push.pusher}",
                        changed_files=changed_files,
                    )
                )
            continue
        if push.deleted:  # the production branch deleted: the site keeps serving what it serves
            continue
        notes.append(
            push_build_request(
                pipeline=pipeline,
                branch=branch,
                commit_sha=push.after,
                changed_files=changed_files,
                actor=f"github:{push.pusher}",
            )
        )
    if not notes:
        if push.deleted:
            return f"ignored: {where} was deleted"
        return f"no pipeline deploys {push.repository} branch {branch} with installation {push.installation_id}"
    return "; ".join(notes)
