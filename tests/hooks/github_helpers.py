"""Signed GitHub deliveries for the hook tests, shaped like ../shared/fixtures/github-push.json."""

from __future__ import annotations

import copy
import json
import uuid

from hooks.github import github_signature

SECRET = "It's a Secret to Everybody"
URL = "/hooks/github/"
SHA = "59b20b8d5c6ff8d09518454d4dd8b7b30f095ab5"
INSTALLATION = 12345678

PUSH = {
    "ref": "refs/heads/main",
    "before": "6113728f27ae82c7b1a177c8d03f9e96e0adf246",
    "after": SHA,
    "created": False,
    "deleted": False,
    "forced": False,
    "repository": {"id": 186853002, "full_name": "octo-org/site", "default_branch": "main", "private": True},
    "installation": {"id": INSTALLATION},
    "head_commit": {
        "id": SHA,
        "message": "Update index",
        "timestamp": "2026-05-01T12:00:00Z",
        "author": {"name": "Octo", "email": "o@example.com", "username": "octo"},
    },
    "pusher": {"name": "octo"},
    "sender": {"login": "octo"},
}


def push_payload(**changes) -> dict:
    payload = copy.deepcopy(PUSH)
    payload.update(changes)
    return payload


def deliver(
    client,
    payload: dict | bytes,
    *,
    event: str = "push",
    delivery_id: str | None = None,
    secret: str = SECRET,
    signature: str | None = "sign",
    **headers,
):
    """POST one delivery as GitHub does: raw JSON body, event, delivery id and signature headers.
    ``signature="sign"`` signs with ``secret``; None leaves the header out; any other value is sent."""
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    sent = {"X-GitHub-Event": event, "X-GitHub-Delivery": delivery_id or str(uuid.uuid4()), **headers}
    if signature == "sign":
        sent["X-Hub-Signature-256"] = github_signature(secret=secret, body=body)
    elif signature is not None:
        sent["X-Hub-Signature-256"] = signature
    return client.post(
        URL, data=body, content_type="application/json", headers={k: v for k, v in sent.items() if v is not None}
    )


def installation_payload(action: str, *, installation_id: int = INSTALLATION, repositories=("octo-org/site",)) -> dict:
    """An ``installation`` delivery (created, deleted, suspend, unsuspend), shaped like GitHub's."""
    payload = {
        "action": action,
        "installation": {
            "id": installation_id,
            "account": {"login": "octo-org", "type": "Organization"},
            "repository_selection": "selected",
            "app_id": 4242,
        },
        "sender": {"login": "octo"},
    }
    if action == "created":
        payload["repositories"] = [{"id": n, "full_name": name, "private": True} for n, name in enumerate(repositories)]
    return payload


def installation_repositories_payload(
    action: str, *, installation_id: int = INSTALLATION, added=(), removed=()
) -> dict:
    """An ``installation_repositories`` delivery (added, removed)."""
    return {
        "action": action,
        "installation": {"id": installation_id, "account": {"login": "octo-org"}},
        "repository_selection": "selected",
        "repositories_added": [{"full_name": name, "private": True} for name in added],
        "repositories_removed": [{"full_name": name, "private": True} for name in removed],
        "sender": {"login": "octo"},
    }
