"""Twelve clients ask to provision the same pipeline at once: the row lock lets exactly one through."""

from concurrent.futures import ThreadPoolExecutor
import threading

from django.db import connection
import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from events.models import Event
from pipelines.choices import PipelineStatus as S
from pipelines.models import Pipeline
from tests.factories import PipelineFactory

CLIENTS = 12


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_parallel_provision_requests_let_exactly_one_through(user, broker):
    pipeline = PipelineFactory(owner=user)
    key = Token.objects.create(user=user).key
    url = f"/api/v1/pipelines/{pipeline.id}/provision/"
    barrier = threading.Barrier(CLIENTS)

    def ask(_: int):
        try:
            client = APIClient()
            client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
            barrier.wait(timeout=30)
            response = client.post(url)
            return response.status_code, response.json()
        finally:
            connection.close()  # each thread has its own connection; leave none open

    with ThreadPoolExecutor(max_workers=CLIENTS) as pool:
        answers = list(pool.map(ask, range(CLIENTS)))

    codes = sorted(code for code, _ in answers)
    assert codes == [202] + [409] * (CLIENTS - 1), answers
    for code, body in answers:
        if code == 409:
            assert body["code"] == "invalid_transition"
            assert body["status"] == S.PROVISION_REQUEST
            assert "request_provisioning" not in body["allowed"]
    assert Pipeline.objects.get(pk=pipeline.pk).status == S.PROVISION_REQUEST
    assert Event.objects.filter(pipeline_id=pipeline.id).count() == 1
    assert len(broker.queues["troy"].queue) == 1  # one provisioning job, not twelve
