"""A worker message lost between commit and broker must not leave a pipeline waiting forever:
the reaper sends it again once the pipeline has waited past TROY_RESEND_WAITING_AFTER_SECONDS."""

from datetime import timedelta

from django.utils import timezone
from dramatiq import Message
import pytest

from pipelines import services
from pipelines.choices import PipelineStatus as S
from pipelines.models import Pipeline
from tests.factories import PipelineFactory, put_in_status

pytestmark = pytest.mark.django_db


def messages(broker):
    decoded = (Message.decode(data) for queue in broker.queues.values() for data in list(queue.queue))
    return sorted((m.actor_name, tuple(m.args)) for m in decoded)


def waited(status, seconds):
    return put_in_status(PipelineFactory(), status, status_changed_at=timezone.now() - timedelta(seconds=seconds))


def test_waiting_pipelines_past_the_limit_get_their_message_again(broker, settings, django_capture_on_commit_callbacks):
    settings.TROY_RESEND_WAITING_AFTER_SECONDS = 300
    provision = waited(S.PROVISION_REQUEST, 301)
    queued = waited(S.QUEUED, 3600)
    deletion = waited(S.SCHEDULED_FOR_DELETION, 900)
    waited(S.PROVISION_REQUEST, 60)  # not long enough yet
    waited(S.DEPLOYING, 3600)  # in flight: the reaper's business, not a resend
    waited(S.DEPLOYED, 3600)  # at rest

    with django_capture_on_commit_callbacks(execute=True):
        resent = services.pipelines_resend_waiting()

    assert sorted(resent) == sorted([provision.name, queued.name, deletion.name])
    assert messages(broker) == sorted(
        [
            ("provision_pipeline", (str(provision.id),)),
            ("run_deployment", (str(queued.id),)),
            ("delete_pipeline", (str(deletion.id),)),
        ]
    )
    assert Pipeline.objects.get(pk=provision.pk).status == S.PROVISION_REQUEST  # no status change


@pytest.mark.django_db(transaction=True)
def test_a_lost_provisioning_message_is_recovered_by_the_reaper(aws, broker, settings):
    import dramatiq

    from pipelines.tasks import reap_stuck_pipelines

    settings.TROY_RESEND_WAITING_AFTER_SECONDS = 0
    lost = PipelineFactory()
    services.pipeline_request_provisioning(pipeline_id=lost.id, actor="alice")
    assert messages(broker) == [("provision_pipeline", (str(lost.id),))]
    broker.flush_all()  # the broker loses it before any worker takes it

    worker = dramatiq.Worker(broker, worker_timeout=100)
    worker.start()
    try:
        reap_stuck_pipelines.send()
        broker.join("troy", timeout=30_000)
        worker.join()
    finally:
        worker.stop()
    lost.refresh_from_db()
    assert lost.status == S.READY_FOR_DEPLOYMENT and lost.distribution_id
