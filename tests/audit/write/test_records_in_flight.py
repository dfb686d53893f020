"""The records-in-flight budget: a counting semaphore on records that refuses instead of waiting."""

from __future__ import annotations

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
