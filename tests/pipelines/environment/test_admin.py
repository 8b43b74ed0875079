"""The pipeline page's variables inline: saves go through the service; a secret's value (or its
token) never appears in the page."""

from __future__ import annotations

import pytest

from events.models import Event
from pipelines import services
from pipelines.models import PipelineVariable
from tests.factories import PipelineFactory
from tests.pipelines.test_admin import change_url, form_data, operator, shown_messages  # noqa: F401

pytestmark = pytest.mark.django_db

SECRET = "admin-secret-8f2b91"
PREFIX = "variables"


def rows(page) -> dict:
    """The inline's existing rows as the browser posts them back."""
    data = {}
    for inline in page.context["inline_admin_formsets"]:
        if inline.formset.prefix != PREFIX:
            continue
        for index, form in enumerate(inline.formset.initial_forms):
            data[f"{PREFIX}-{index}-id"] = form.instance.pk
            data[f"{PREFIX}-{index}-pipeline"] = form.instance.pipeline_id
            data[f"{PREFIX}-{index}-scope"] = form.instance.scope
            data[f"{PREFIX}-{index}-value"] = "" if form.instance.secret else form.instance.value
    return data


def save(operator, pipeline, *, add: int = 0, **fields):  # noqa: F811
    """Post the page back with ``fields`` changed and ``add`` rows added ("Add another")."""
    page = operator.get(change_url(pipeline))
    assert page.status_code == 200
    data = {**form_data(page), **rows(page), **fields}
    data[f"{PREFIX}-TOTAL_FORMS"] = int(data[f"{PREFIX}-TOTAL_FORMS"]) + add
    return operator.post(change_url(pipeline), data, follow=True)


@pytest.fixture
def pipeline(user):
    return PipelineFactory(owner=user)


def test_adding_a_plain_variable_and_a_secret(operator, pipeline, django_capture_on_commit_callbacks):  # noqa: F811
    response = save(
        operator,
        pipeline,
        add=1,
        **{f"{PREFIX}-0-name": "NODE_ENV", f"{PREFIX}-0-value": "production", f"{PREFIX}-0-scope": "all"},
    )
    assert response.status_code == 200
    assert PipelineVariable.objects.get(name="NODE_ENV").value == "production"
    with django_capture_on_commit_callbacks() as callbacks:
        save(
            operator,
            pipeline,
            add=1,
            **{f"{PREFIX}-1-name": "API_KEY", f"{PREFIX}-1-new_secret": SECRET, f"{PREFIX}-1-scope": "all"},
        )
    variable = PipelineVariable.objects.get(name="API_KEY")
    assert variable.secret and variable.set_by == "operator"
    assert len(callbacks) == 1  # the SSM copy
    assert Event.objects.filter(transition="env_set", actor="operator").count() == 2

    page = operator.get(change_url(pipeline)).content.decode()
    assert "API_KEY" in page and SECRET not in page and variable.value not in page


def test_changing_only_a_secrets_scope_keeps_it(operator, pipeline):  # noqa: F811
    services.env_variable_set(pipeline_id=pipeline.pk, name="API_KEY", value=SECRET, secret=True, actor="a")
    token = PipelineVariable.objects.get().value
    save(operator, pipeline, **{f"{PREFIX}-0-scope": "previews"})
    variable = PipelineVariable.objects.get()
    assert (variable.scope, variable.value, variable.secret) == ("previews", token, True)


def test_deleting_a_row_unsets_it(operator, pipeline, django_capture_on_commit_callbacks):  # noqa: F811
    services.env_variable_set(pipeline_id=pipeline.pk, name="API_KEY", value=SECRET, secret=True, actor="a")
    with django_capture_on_commit_callbacks() as callbacks:
        save(operator, pipeline, **{f"{PREFIX}-0-DELETE": "on"})
    assert not PipelineVariable.objects.exists()
    assert len(callbacks) == 1
    assert Event.objects.filter(transition="env_unset").exists()


def test_a_reserved_name_is_refused_in_the_form(operator, pipeline):  # noqa: F811
    response = save(
        operator,
        pipeline,
        add=1,
        **{f"{PREFIX}-0-name": "AWS_SECRET_ACCESS_KEY", f"{PREFIX}-0-value": "x", f"{PREFIX}-0-scope": "all"},
    )
    assert not PipelineVariable.objects.exists()
    assert "reserved" in response.content.decode()


def test_monorepo_settings_in_the_admin(operator, pipeline):  # noqa: F811
    save(operator, pipeline, base_dir="apps/web", watch_paths='["apps/web"]')
    pipeline.refresh_from_db()
    assert (pipeline.base_dir, pipeline.watch_paths) == ("apps/web", ["apps/web"])
    response = save(operator, pipeline, watch_paths='["/abs"]')
    assert "relative to the repository root" in response.content.decode()
    pipeline.refresh_from_db()
    assert pipeline.watch_paths == ["apps/web"]
