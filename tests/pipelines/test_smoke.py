import pytest

from events.models import Event
from pipelines import services
from pipelines.choices import BuildKind, BuildTrigger, PipelineStatus as S
from tests.factories import PipelineFactory, put_in_status

pytestmark = pytest.mark.django_db


def test_release_build_runs_through(django_capture_on_commit_callbacks):
    p = put_in_status(PipelineFactory(), S.READY_FOR_DEPLOYMENT)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        b = services.build_request(pipeline_id=p.id, kind=BuildKind.RELEASE, trigger=BuildTrigger.CLI,
                                   actor="alice", artifact_key="releases/x.zip")
    assert len(callbacks) == 1
    started = services.deployment_start(pipeline_id=p.id)
    assert started == b
    services.deployment_finish(build_id=b.id, stats={"files_uploaded": 3})
    p.refresh_from_db()
    assert p.status == S.DEPLOYED and p.live_build_id == b.id
    assert [e.transition for e in Event.objects.order_by("id")] == ["queue_deployment", "start_deployment", "finish_deployment"]
