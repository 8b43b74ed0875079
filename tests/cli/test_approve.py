"""`troy approve NAME LABEL` and what `troy previews NAME` shows of automated previews."""

from __future__ import annotations

import pytest

from pipelines.models import Build
from tests.pipelines.previews.support import branch_build, pr_build, preview_pipeline

pytestmark = pytest.mark.django_db(transaction=True)


def test_previews_show_their_source_and_approval_and_approve_builds_the_fork(troy, user):
    site = preview_pipeline(owner=user, name="site")
    branch_build(site)
    waiting = pr_build(site, 9, fork=True)

    listed = troy("previews", "site")
    assert listed.code == 0, listed
    assert "branch feature/login" in listed.out and "pull request #9" in listed.out
    assert "awaiting approval" in listed.out

    approved = troy("approve", "site", "pr-9")
    assert approved.code == 0, approved
    assert f"Approved build #{waiting.number}" in approved.err and "without secrets" in approved.err
    assert not Build.objects.get(pk=waiting.pk).awaiting_approval

    again = troy("approve", "site", "pr-9")
    assert again.code != 0 and "waits for approval" in again.err
    assert troy("approve", "site", "pr-404").code != 0
