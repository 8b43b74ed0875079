"""The previews' admin: source, approval and closing shown; approving a fork's waiting build
through the service; the pipeline's preview settings editable and checked."""

from __future__ import annotations

import pytest

from pipelines.choices import BuildStatus
from pipelines.models import Build
from tests.form_client import FormClient
from tests.pipelines.previews.support import pr_build, preview_pipeline

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(staff_user):
    client = FormClient()
    client.force_login(staff_user)
    return client


def test_the_admin_lists_previews_with_their_source_and_approval_and_approves_a_fork(admin_client):
    pipeline = preview_pipeline()
    waiting = pr_build(pipeline, 9, fork=True)

    listing = admin_client.get("/admin/pipelines/preview/")
    text = listing.content.decode()
    assert listing.status_code == 200 and "pr-9" in text and "Pull request" in text
    assert 'alt="True"' in text  # awaiting approval
    page = admin_client.get(f"/admin/pipelines/pipeline/{pipeline.pk}/change/")
    assert page.status_code == 200 and "Awaiting approval" in page.content.decode()
    builds = admin_client.get("/admin/pipelines/build/")
    assert "pr-9 (awaiting approval)" in builds.content.decode()

    answer = admin_client.post(
        "/admin/pipelines/preview/",
        {"action": "approve_previews", "_selected_action": [waiting.preview_id]},
        follow=True,
    )
    assert answer.status_code == 200 and "approved" in answer.content.decode()
    waiting.refresh_from_db()
    assert not waiting.awaiting_approval and waiting.status == BuildStatus.QUEUED and waiting.approved_by

    again = admin_client.post(
        "/admin/pipelines/preview/",
        {"action": "approve_previews", "_selected_action": [waiting.preview_id]},
        follow=True,
    )
    assert "waits for approval" in again.content.decode()
    assert Build.objects.filter(preview_id=waiting.preview_id).count() == 1


def test_the_pipeline_page_edits_the_preview_settings(admin_client):
    pipeline = preview_pipeline()
    page = admin_client.get(f"/admin/pipelines/pipeline/{pipeline.pk}/change/")
    assert "preview_branches" in page.content.decode() and "pull_request_previews" in page.content.decode()
