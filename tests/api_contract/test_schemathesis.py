"""The OpenAPI schema tells the truth: a bounded schemathesis run over every operation.

Schemathesis generates requests from ``/api/schema/`` (valid ones, and invalid ones that the API must refuse with a documented 4xx), sends them to the
WSGI application in-process and checks every answer: no 5xx, the status code is documented, the
content type and the body match the schema. A fixed seed and a small example count per operation
keep the run reproducible and inside CI's budget; ``TROY_SCHEMATHESIS_EXAMPLES`` raises it for a
longer local run. Ids in paths are random, so most detail operations answer 404 (documented); the
owner's real pipeline, build, release and event are there too so list answers hold real rows.
"""

from __future__ import annotations

import os

from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, Phase, given, seed, settings
import pytest
from rest_framework.authtoken.models import Token
import schemathesis
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.generation.modes import GenerationMode

from pipelines import services
from pipelines.choices import BuildKind, BuildTrigger, PipelineStatus
from tests.factories import PipelineFactory, put_in_status

EXAMPLES = int(os.environ.get("TROY_SCHEMATHESIS_EXAMPLES", "12"))
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


def _operations():
    schema = schemathesis.openapi.from_wsgi("/api/schema/", get_wsgi_application())
    operations = [result.ok() for result in schema.get_all_operations()]
    documented = sum(len(methods) for methods in schema.raw_schema["paths"].values())
    assert len(operations) == documented >= 19  # every operation of the API, none filtered out
    return operations


@pytest.fixture
def owner_token(user):
    pipeline = put_in_status(PipelineFactory(owner=user), PipelineStatus.READY_FOR_DEPLOYMENT)
    services.build_request(
        pipeline_id=pipeline.pk,
        kind=BuildKind.AUTOMATED,
        trigger=BuildTrigger.MANUAL,
        ref="main",
        actor="test",
        requested_by=user,
    )
    return Token.objects.get_or_create(user=user)[0].key


@pytest.mark.django_db
def test_every_operation_answers_as_its_schema_says(owner_token, keep_test_connection):
    operations = _operations()
    failures: list[str] = []
    for operation, mode in [(op, mode) for op in operations for mode in GenerationMode]:

        @seed(20261201)
        @settings(
            max_examples=EXAMPLES,
            derandomize=True,
            database=None,
            deadline=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy(generation_mode=mode))
        def check(case):
            case.call_and_validate(headers={"Authorization": f"Token {owner_token}"}, checks=CHECKS)

        try:
            check()
        except Exception as exc:  # collect every operation's failure, then report them all
            if mode == GenerationMode.NEGATIVE and "Unable to satisfy assumptions" in str(exc):
                continue  # an operation without parameters or body has no input to make invalid
            failures.append(f"{operation.method.upper()} {operation.path} ({mode} cases): {exc}")
    assert not failures, "\n\n".join(failures)


@pytest.fixture
def keep_test_connection():
    """The WSGI handler closes the database connection after each request, which would end the
    test's transaction; Django's own test client disconnects the same signal handlers."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)
