"""In the kvs mode the preview and permalink pointers are published like a pipeline's own host,
and a protected host's value carries its credentials (never a clear password); a preview's
password change publishes its host and its builds' permalinks again (data API with Stubber)."""

from __future__ import annotations

import json

from django.db import transaction
import pytest

from edge.rules import credential_make
from pipelines import services
from pipelines.choices import PointerKind
from pipelines.flows import edge
from pipelines.models import EdgePointer, Preview, permalink_host, preview_host
from tests.edge_aws import edge_aws_fixture  # noqa: F401 - a fixture, used by name
from tests.factories import PipelineFactory
from tests.pipelines.test_edge_flows import _build, _expect_put, data_api  # noqa: F401 - data_api is a fixture

pytestmark = pytest.mark.django_db


def test_preview_and_permalink_pointers_are_published_with_their_credentials(data_api):  # noqa: F811
    pipeline = PipelineFactory(name="docs")
    build = _build(pipeline)
    build.visitor_credentials = [credential_make(username="alice", password="pw", salt="00" * 8)]
    build.save()
    preview = Preview.objects.create(pipeline=pipeline, label="next", host=preview_host(label="next", name="docs"))
    with transaction.atomic():
        services.pointer_write(pipeline=pipeline, host=preview.host, kind=PointerKind.PREVIEW, build_id=build.id)
        services.pointer_set_permalink(pipeline=pipeline, build=build)
    permalink = permalink_host(number=build.number, name="docs")
    value = json.dumps(
        {"p": str(pipeline.id), "b": str(build.id), "a": build.visitor_credentials}, separators=(",", ":")
    )
    _expect_put(data_api, {preview.host: value, permalink: value})

    assert edge.publish_pointers_run(pipeline_id=pipeline.id) == 2
    assert all(pointer.is_published for pointer in EdgePointer.objects.filter(pipeline=pipeline))

    # Setting the preview's password changes the preview's value and the permalink's (the build
    # was deployed to it): both are published again.
    build.preview = preview
    build.save()
    services.preview_password_set(pipeline_id=pipeline.id, label="next", password="secret-pw", actor="test")
    preview.refresh_from_db()
    both = {"p": str(pipeline.id), "b": str(build.id), "a": [*build.visitor_credentials, preview.password_credential]}
    value = json.dumps(both, separators=(",", ":"))
    assert "secret-pw" not in value
    _expect_put(data_api, {preview.host: value, permalink: value}, etag="E2")
    assert edge.publish_pointers_run(pipeline_id=pipeline.id) == 2
