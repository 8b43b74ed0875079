"""The transition table of DESIGN.md, tested as a table: every status × every transition.

Legal pairs change the status and write exactly one event in the same transaction; illegal ones
raise InvalidTransition (409 in the API) and change nothing — no status, no event, no field.
"""

from django.db import transaction
import pytest

from deployment_service.exceptions import InvalidTransition
from events.models import Event
from pipelines.choices import ROW_STATUSES
from pipelines.choices import PipelineStatus as S
from pipelines.models import Build, Pipeline
from pipelines.services.transitions import apply_transition, lock_pipeline
from tests.factories import PipelineFactory, put_in_status

pytestmark = pytest.mark.django_db

# transition: (sources, target). Copied from DESIGN.md's table, not from the model.
TABLE = {
    "request_provisioning": ([S.PRE_PROVISIONED, S.FAILED_TO_PROVISION], S.PROVISION_REQUEST),
    "start_provisioning": ([S.PROVISION_REQUEST], S.PROVISIONING),
    "finish_provisioning": ([S.PROVISIONING], S.READY_FOR_DEPLOYMENT),
    "fail_provisioning": ([S.PROVISIONING], S.FAILED_TO_PROVISION),
    "queue_deployment": ([S.READY_FOR_DEPLOYMENT, S.DEPLOYED, S.FAILED_TO_DEPLOY], S.QUEUED),
    "start_deployment": ([S.QUEUED], S.DEPLOYING),
    "finish_deployment": ([S.DEPLOYING], S.DEPLOYED),
    "fail_deployment": ([S.QUEUED, S.DEPLOYING], S.FAILED_TO_DEPLOY),
    "withdraw_deployment": ([S.QUEUED], None),  # back to where it was queued from
    "schedule_deletion": (
        [
            S.PRE_PROVISIONED,
            S.PROVISION_REQUEST,
            S.READY_FOR_DEPLOYMENT,
            S.QUEUED,
            S.DEPLOYED,
            S.FAILED_TO_PROVISION,
            S.FAILED_TO_DEPLOY,
            S.FAILED_TO_DELETE,
        ],
        S.SCHEDULED_FOR_DELETION,
    ),
    "start_deletion": ([S.SCHEDULED_FOR_DELETION], S.DELETING),
    "finish_deletion": ([S.DELETING], S.DELETED),
    "fail_deletion": ([S.DELETING], S.FAILED_TO_DELETE),
}

STATUSES = [value for value, _label in ROW_STATUSES]
CASES = [(status, name) for status in STATUSES for name in TABLE]


def _kwargs(name, pipeline):
    if name == "finish_provisioning":
        return {"distribution_id": "E2EXAMPLE", "distribution_domain": "d111.cloudfront.net"}
    if name in {"fail_provisioning", "fail_deployment", "fail_deletion"}:
        return {"error": "boom"}
    if name == "finish_deployment":
        return {"live_build": Build.objects.create(pipeline=pipeline, number=1, kind="release", trigger="cli")}
    return {}


def test_table_covers_every_status_and_transition():
    assert len(STATUSES) == 12 and len(S.choices) == 13
    model_transitions = {t.name for t in Pipeline._meta.get_field("status").get_all_transitions(Pipeline)}
    assert model_transitions == set(TABLE)


@pytest.mark.parametrize(("status", "name"), CASES, ids=[f"{s}-{n}" for s, n in CASES])
def test_transition(status, name):
    pipeline = put_in_status(PipelineFactory(), status, queued_from=S.DEPLOYED if status == S.QUEUED else "")
    sources, target = TABLE[name]
    kwargs = _kwargs(name, pipeline)
    before = Pipeline.objects.filter(pk=pipeline.pk).values().get()

    def run():
        with transaction.atomic():
            locked = lock_pipeline(pipeline.pk)
            apply_transition(locked, name, actor="tester", message="table", save=name != "finish_deletion", **kwargs)

    if status in sources:
        run()
        expected = target or S.DEPLOYED  # withdraw returns to queued_from
        event = Event.objects.get(pipeline_id=pipeline.pk)
        assert (event.from_status, event.to_status, event.transition, event.actor) == (status, expected, name, "tester")
        if name != "finish_deletion":
            assert Pipeline.objects.get(pk=pipeline.pk).status == expected
    else:
        with pytest.raises(InvalidTransition) as excinfo:
            run()
        assert excinfo.value.status == status
        if not (name == "queue_deployment" and status in (S.QUEUED, S.DEPLOYING)):
            # (a deployment asked for while one is queued or running is accepted as a queued build)
            assert name not in excinfo.value.allowed
        assert Event.objects.count() == 0
        after = Pipeline.objects.filter(pk=pipeline.pk).values().get()
        assert after == before


def test_status_is_protected():
    pipeline = PipelineFactory()
    with pytest.raises(AttributeError):
        pipeline.status = S.DEPLOYED


def test_event_is_rolled_back_with_its_transition():
    """Event and status change share the transaction: an error after both undoes both."""
    pipeline = PipelineFactory()
    with pytest.raises(RuntimeError):
        with transaction.atomic():
            locked = lock_pipeline(pipeline.pk)
            apply_transition(locked, "request_provisioning", actor="tester")
            raise RuntimeError("crash before commit")
    assert Pipeline.objects.get(pk=pipeline.pk).status == S.PRE_PROVISIONED
    assert Event.objects.count() == 0
