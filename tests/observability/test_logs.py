"""JSON log records carry the log context; Dramatiq messages set it from their actors' arguments."""

from __future__ import annotations

import json
import logging

import dramatiq
import pytest

from deployment_service.observability.logs import JsonFormatter, current_log_context, log_context


def _record(message: str, **extra) -> logging.LogRecord:
    record = logging.getLogger("troy.test").makeRecord("troy.test", logging.INFO, __file__, 1, message, (), None)
    for name, value in extra.items():
        setattr(record, name, value)
    return record


def test_json_records_carry_the_pipeline_and_build_ids_of_the_context():
    with log_context(pipeline_id="p-1", build_id="b-2"):
        line = JsonFormatter().format(_record("deploying", files=3))
    entry = json.loads(line)
    assert entry["message"] == "deploying"
    assert entry["level"] == "INFO"
    assert entry["pipeline_id"] == "p-1"
    assert entry["build_id"] == "b-2"
    assert entry["files"] == 3


def test_outside_a_context_records_have_no_ids():
    entry = json.loads(JsonFormatter().format(_record("idle")))
    assert "pipeline_id" not in entry and "build_id" not in entry


def test_unknown_context_fields_are_refused():
    with pytest.raises(TypeError), log_context(tenant="x"):
        pass


seen: list[dict[str, str]] = []


@dramatiq.actor(queue_name="troy-observability-test", max_retries=0)
def remember_log_context(pipeline_id: str, attempt: int = 0) -> None:
    seen.append(current_log_context())


@dramatiq.actor(queue_name="troy-observability-test", max_retries=0)
def remember_build_log_context(build_id: str) -> None:
    seen.append(current_log_context())


def test_the_worker_sets_the_context_from_the_actor_arguments(broker, worker):
    seen.clear()
    remember_log_context.send("pipeline-7")
    remember_build_log_context.send_with_options(kwargs={"build_id": "build-9"})
    broker.join(remember_log_context.queue_name)
    worker.join()
    assert {"pipeline_id": "pipeline-7"} in seen
    assert {"build_id": "build-9"} in seen
    assert len(seen) == 2
