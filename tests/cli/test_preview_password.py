"""`troy previews password NAME LABEL`: the password from stdin (or a prompt), never echoed or
printed; `--clear` removes it; `troy previews` still lists."""

from __future__ import annotations

import io

from django.core import serializers
import pytest

from pipelines.models import Preview
from tests.cli.test_release import shop, write_site  # noqa: F401 - shop is a fixture

pytestmark = pytest.mark.django_db(transaction=True)


def test_set_and_clear_a_preview_password(troy, shop, tmp_path, monkeypatch):  # noqa: F811
    assert troy("release", "shop", write_site(tmp_path / "v1"), "--preview", "feature-x").code == 0

    monkeypatch.setattr("sys.stdin", io.StringIO("s3cret-visitor\n"))
    result = troy("previews", "password", "shop", "feature-x", "--username", "pat")
    assert result.code == 0, result
    assert "now asks visitors for a password (username pat)" in result.err
    assert "s3cret-visitor" not in result.out + result.err
    preview = Preview.objects.get(label="feature-x")
    assert preview.password_protected
    assert "s3cret-visitor" not in serializers.serialize("json", Preview.objects.all())

    listed = troy("previews", "shop", "--json")
    assert listed.code == 0 and listed.json()[0]["password_protected"] is True

    cleared = troy("previews", "password", "shop", "feature-x", "--clear")
    assert cleared.code == 0, cleared
    assert not Preview.objects.get(label="feature-x").password_protected


def test_an_empty_password_or_a_wrong_shape_is_refused(troy, shop, tmp_path, monkeypatch):  # noqa: F811
    assert troy("release", "shop", write_site(tmp_path / "v1"), "--preview", "feature-x").code == 0
    monkeypatch.setattr("sys.stdin", io.StringIO("\n"))
    empty = troy("previews", "password", "shop", "feature-x")
    assert empty.code != 0 and "no password given" in empty.err
    assert troy("previews", "shop", "feature-x").code != 0
    assert not Preview.objects.get(label="feature-x").password_protected
