"""Fixtures of the deploy tests: a provisioned pipeline (moto), and the S3 requests recorder."""

from __future__ import annotations

import pytest

from pipelines.choices import PipelineStatus as S
from pipelines.models import Pipeline
from tests.factories import PipelineFactory, put_in_status
from tests.pipelines.deploy.support import S3Requests, aws_events, keep_params
from tests.releases.helpers import create_distribution


@pytest.fixture
def s3_requests(aws):
    recorder = S3Requests()
    events = aws_events()
    events.register("before-parameter-build.s3.*", keep_params)
    events.register("before-call.s3.*", recorder.record)
    yield recorder
    events.unregister("before-call.s3.*", recorder.record)
    events.unregister("before-parameter-build.s3.*", keep_params)


@pytest.fixture
def pipeline(aws, user):
    p = put_in_status(PipelineFactory(owner=user, repository=""), S.READY_FOR_DEPLOYMENT)
    create_distribution(p)
    return Pipeline.objects.get(pk=p.pk)
