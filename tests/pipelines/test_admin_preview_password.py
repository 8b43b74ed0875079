"""The Preview admin's password page: a password input (never filled in), set and clear through
the services; the hash is never shown."""

from __future__ import annotations

from django.conf import settings
from django.urls import reverse
import pytest

from pipelines.models import EdgePointer, Preview, preview_host
from tests.factories import PipelineFactory
from tests.form_client import FormClient

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(staff_user):
    client = FormClient()  # forms without a file field post urlencoded, as browsers do
    client.force_login(staff_user)
    return client


@pytest.fixture
def preview():
    pipeline = PipelineFactory(name="docs")
    return Preview.objects.create(pipeline=pipeline, label="next", host=preview_host(label="next", name="docs"))


def test_the_admin_sets_and_clears_a_preview_password(admin_client, preview, settings):
    settings.TROY_EDGE_POINTERS = "local"
    url = reverse("admin:pipelines_preview_password", args=[preview.pk])
    page = admin_client.get(url)
    assert page.status_code == 200
    assert b'type="password"' in page.content and b"Set password" in page.content

    answer = admin_client.post(url, {"username": "", "password": "admin-set-pw"})
    assert answer.status_code == 302
    preview.refresh_from_db()
    assert preview.password_protected and "admin-set-pw" not in preview.password_credential
    changelist = admin_client.get(reverse("admin:pipelines_preview_changelist"))
    assert b"protected (change)" in changelist.content
    assert preview.password_credential.encode() not in changelist.content
    page = admin_client.get(url)
    assert b"admin-set-pw" not in page.content and preview.password_credential.encode() not in page.content

    admin_client.post(url, {"_clear": "1"})
    preview.refresh_from_db()
    assert not preview.password_protected


def test_an_empty_password_is_refused_on_the_page(admin_client, preview):
    url = reverse("admin:pipelines_preview_password", args=[preview.pk])
    answer = admin_client.post(url, {"username": "u", "password": ""})
    assert answer.status_code == 200 and b"password must not be empty" in answer.content
    preview.refresh_from_db()
    assert not preview.password_protected
    assert not EdgePointer.objects.exclude(credentials="").exists()
    assert settings.TROY_BASE_DOMAIN in preview.host


def test_the_pipeline_page_links_each_preview_to_its_password_page(admin_client, preview, settings):
    settings.TROY_EDGE_POINTERS = "local"
    page = admin_client.get(reverse("admin:pipelines_pipeline_change", args=[preview.pipeline.pk]))
    assert page.status_code == 200
    password_url = reverse("admin:pipelines_preview_password", args=[preview.pk])
    assert f'<a href="{password_url}">set</a>'.encode() in page.content
    admin_client.post(password_url, {"username": "", "password": "inline-pw"})
    page = admin_client.get(reverse("admin:pipelines_pipeline_change", args=[preview.pipeline.pk]))
    assert f'<a href="{password_url}">protected (change)</a>'.encode() in page.content
    assert b"inline-pw" not in page.content
