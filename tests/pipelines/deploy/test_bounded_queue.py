"""The deploy's work queue: items are pulled as slots free up (memory does not grow with the
number of files), and the first error stops it."""

from __future__ import annotations

import threading

import pytest

from pipelines.flows.deploy.store import run_bounded


def test_at_most_in_flight_items_are_taken_ahead_of_the_work_done():
    lock = threading.Lock()
    state = {"pulled": 0, "finished": 0, "most_ahead": 0}

    def items():
        for i in range(500):
            with lock:
                state["pulled"] += 1
                state["most_ahead"] = max(state["most_ahead"], state["pulled"] - state["finished"])
            yield i

    def work(item: int) -> None:
        with lock:
            state["finished"] += 1

    run_bounded(work, items(), workers=4, in_flight=8)
    assert state["finished"] == 500
    assert state["most_ahead"] <= 8


def test_the_first_error_stops_the_queue_and_is_raised():
    pulled: list[int] = []

    def items():
        for i in range(1000):
            pulled.append(i)
            yield i

    def work(item: int) -> None:
        if item == 3:
            raise RuntimeError("network down")

    with pytest.raises(RuntimeError, match="network down"):
        run_bounded(work, items(), workers=2, in_flight=4)
    assert len(pulled) < 1000
