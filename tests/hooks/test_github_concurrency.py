"""Races on PostgreSQL (row locks and unique constraints are what make them safe): GitHub
delivering the same delivery twice at once, and two workers taking the same message."""

from __future__ import annotations

import json
import threading

from django.db import connection
import pytest

from hooks.github import github_delivery_receive, github_signature
from hooks.github_tasks import handle_github_delivery
from hooks.models import GithubDelivery
from pipelines.choices import PipelineStatus as S
from pipelines.models import Build
from tests.factories import PipelineFactory, put_in_status
from tests.hooks.github_helpers import SECRET, push_payload

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def run_together(fn, n: int = 2) -> list:
    barrier = threading.Barrier(n)
    results: list = [None] * n

    def work(i: int) -> None:
        try:
            barrier.wait()
            results[i] = fn()
        except Exception as exc:
            results[i] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=work, args=(i,)) for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return results


def test_the_same_delivery_arriving_twice_at_once_is_stored_once(settings, broker):
    settings.GITHUB_WEBHOOK_SECRET = SECRET
    body = json.dumps(push_payload()).encode()
    signature = github_signature(secret=SECRET, body=body)

    receipts = run_together(
        lambda: github_delivery_receive(body=body, signature=signature, event="push", delivery_id="same-delivery"), n=4
    )

    assert sorted(r.status for r in receipts) == ["duplicate", "duplicate", "duplicate", "queued"]
    assert GithubDelivery.objects.count() == 1
    assert len(broker.queues["troy"].queue) == 1


def test_two_workers_handling_one_delivery_start_one_build(broker):
    put_in_status(PipelineFactory(name="site", repository="octo-org/site", branch="main"), S.DEPLOYED)
    delivery = GithubDelivery.objects.create(delivery_id="race", event="push", payload=push_payload())

    outcomes = run_together(lambda: handle_github_delivery(delivery.pk), n=3)

    assert not [o for o in outcomes if isinstance(o, Exception)]
    assert Build.objects.count() == 1
