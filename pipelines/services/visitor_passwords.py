"""A preview's visitor password (docs/edge.md, "Visitor passwords"): stored hashed on the Preview
(``edge.rules.credential_make``), carried by the preview's pointer and by the permalinks of the
builds deployed to it, checked by the viewer function. The clear password is hashed here and
goes nowhere else: not into events, logs or answers."""

from __future__ import annotations

import uuid

from django.core.exceptions import ValidationError
from django.db import transaction

from edge.rules import credential_make, credential_problem
from pipelines.exceptions import PreviewNotFound
from pipelines.models import Preview
from pipelines.services.pointers import pointers_refresh_credentials
from pipelines.services.transitions import lock_pipeline, note_record


def _locked_preview(pipeline_id: uuid.UUID | str, label: str) -> Preview:
    pipeline = lock_pipeline(pipeline_id)
    preview = Preview.objects.select_for_update().filter(pipeline=pipeline, label=label).first()
    if preview is None:
        raise PreviewNotFound(f"No preview {label!r} on this pipeline.")
    preview.pipeline = pipeline
    return preview


def _record(preview: Preview, *, actor: str, message: str) -> None:
    note_record(preview.pipeline, transition="preview_password", actor=actor, message=message)


def preview_password_set(
    *, pipeline_id: uuid.UUID | str, label: str, password: str, username: str = "", actor: str
) -> Preview:
    """Protect a preview: visitors of its host (and of its builds' permalinks) must send this
    username and password (any username when ``username`` is ""). Replaces an earlier password.
    The build's own basic_auth users stay accepted too."""
    why = credential_problem(username, password, username_required=False)
    if why is not None:
        raise ValidationError({"password": [why]})
    with transaction.atomic():
        preview = _locked_preview(pipeline_id, label)
        preview.password_credential = credential_make(username=username, password=password)
        preview.save(update_fields=["password_credential", "updated_at"])
        hosts = pointers_refresh_credentials(preview=preview)
        who = f"username {username}" if username else "any username"
        _record(
            preview,
            actor=actor,
            message=f"Preview {preview.label} asks visitors for a password ({who}; {len(hosts)} hosts updated).",
        )
    return preview


def preview_password_clear(*, pipeline_id: uuid.UUID | str, label: str, actor: str) -> Preview:
    """Remove a preview's password (the build's own basic_auth, if any, still applies)."""
    with transaction.atomic():
        preview = _locked_preview(pipeline_id, label)
        if not preview.password_credential:
            return preview
        preview.password_credential = ""
        preview.save(update_fields=["password_credential", "updated_at"])
        hosts = pointers_refresh_credentials(preview=preview)
        _record(
            preview,
            actor=actor,
            message=f"Preview {preview.label} no longer asks for a password ({len(hosts)} hosts updated).",
        )
    return preview
