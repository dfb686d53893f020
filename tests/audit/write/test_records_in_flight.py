"""The records-in-flight budget: a counting semaphore on records that refuses instead of waiting,
or after a bounded wait."""

from __future__ import annotations

import threading

import pytest

from audit.write.records_in_flight import RecordsInFlight, RecordsInFlightFull


def test_records_are_admitted_while_they_fit_and_given_back_after():
    budget = RecordsInFlight(10)
    with budget.admitted(6):
        with pytest.raises(RecordsInFlightFull), budget.admitted(5):
            pass  # pragma: no cover - refused before the block
        with budget.admitted(4):
            assert budget.held == 10
        assert budget.held == 6
    assert budget.held == 0


def test_records_are_given_back_when_the_request_fails():
    budget = RecordsInFlight(10)
    with pytest.raises(ValueError, match="invalid"), budget.admitted(7):
        raise ValueError("invalid")
    assert budget.held == 0


def test_a_request_larger_than_the_budget_needs_it_whole_and_counts_as_all_of_it():
    """An endpoint of larger requests (e.g. 1000 events) than the budget can still be served."""
    budget = RecordsInFlight(10)
    with budget.admitted(1), pytest.raises(RecordsInFlightFull), budget.admitted(1000):
        pass  # pragma: no cover - refused before the block
    with budget.admitted(1000):
        assert budget.held == 10
        with pytest.raises(RecordsInFlightFull), budget.admitted(1):
            pass  # pragma: no cover - refused before the block
    assert budget.held == 0


@pytest.mark.real_clock
def test_a_waiting_request_is_admitted_when_records_are_given_back_and_refused_after_its_wait():
    budget = RecordsInFlight(10)
    with budget.admitted(8):
        with pytest.raises(RecordsInFlightFull), budget.admitted(5, wait_s=0.05):
            pass
        budget.room_awaited(wait_s=0)  # not full: at once
    with budget.admitted(10), pytest.raises(RecordsInFlightFull):
        budget.room_awaited(wait_s=0.05)
    admitted = threading.Event()

    def later() -> None:
        with budget.admitted(5, wait_s=5):
            admitted.set()

    with budget.admitted(8):
        waiter = threading.Thread(target=later)
        waiter.start()
        assert not admitted.wait(0.1)  # 8 + 5 > 10: it waits
    waiter.join(5)
    assert admitted.is_set()
    assert budget.held == 0
