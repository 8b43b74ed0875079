"""The build's admin page shows the log's last lines, escaped, monospaced, secrets redacted."""

from __future__ import annotations

import pytest

from pipelines import services
from pipelines.choices import BuildKind, BuildTrigger
from pipelines.models import Build
from tests.factories import PipelineFactory

pytestmark = pytest.mark.django_db

SECRET = "s3cr3t-value-for-admin"


@pytest.fixture
def operator(client, staff_user):
    client.force_login(staff_user)
    return client


@pytest.fixture
def build(django_capture_on_commit_callbacks) -> Build:
    pipeline = PipelineFactory()
    return Build.objects.create(pipeline=pipeline, number=1, kind=BuildKind.AUTOMATED, trigger=BuildTrigger.PUSH)


def page(operator, build) -> str:
    response = operator.get(f"/admin/pipelines/build/{build.pk}/change/")
    assert response.status_code == 200
    return response.content.decode()


def test_the_page_shows_the_last_200_lines_escaped(operator, build):
    services.build_log_append(build_id=build.id, text="".join(f"line {n}\n" for n in range(250)))
    services.build_log_append(build_id=build.id, text='<script>alert("x")</script>\n')
    html = page(operator, build)
    assert 'class="troy-build-log"' in html and "monospace" in html
    assert "line 51\n" in html and "line 50\n" not in html and "line 249" in html
    assert "<script>alert" not in html and "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in html
    assert "still being written" in html


def test_a_secret_never_shows_and_a_finished_log_says_so(operator, build):
    services.env_variable_set(pipeline_id=build.pipeline_id, name="TOKEN", value=SECRET, secret=True, actor="a")
    services.build_log_append(build_id=build.id, text=f"using {SECRET}\n")
    services.build_log_finish(build_id=build.id)
    html = page(operator, build)
    assert SECRET not in html and "using ***" in html and "complete" in html


def test_no_log_yet(operator, build):
    assert "No log stored." in page(operator, build)
