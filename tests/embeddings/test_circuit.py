"""CircuitBreaker's states, driven by a fake clock: closed → open → half-open → closed/open."""

from __future__ import annotations

import threading

import pytest

from embeddings.circuit import CircuitBreaker, CircuitState


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def breaker(clock: FakeClock, changes: list[CircuitState] | None = None) -> CircuitBreaker:
    return CircuitBreaker(
        failure_threshold=3, cooldown_s=10.0, clock=clock, on_change=None if changes is None else changes.append
    )


def test_it_opens_after_the_threshold_of_consecutive_failures(clock: FakeClock) -> None:
    circuit = breaker(clock)
    for _ in range(2):
        circuit.record_failure()
        assert (circuit.state, circuit.allow()) == (CircuitState.CLOSED, True)

    circuit.record_failure()

    assert (circuit.state, circuit.allow()) == (CircuitState.OPEN, False)


def test_timeouts_open_it_at_their_own_lower_threshold(clock: FakeClock) -> None:
    circuit = CircuitBreaker(failure_threshold=5, timeout_threshold=2, cooldown_s=10.0, clock=clock)
    circuit.record_failure(timed_out=True)
    circuit.record_failure()
    assert circuit.state is CircuitState.CLOSED

    circuit.record_failure(timed_out=True)

    assert (circuit.state, circuit.allow()) == (CircuitState.OPEN, False)


def test_a_success_resets_the_count_of_timeouts(clock: FakeClock) -> None:
    circuit = CircuitBreaker(failure_threshold=5, timeout_threshold=2, cooldown_s=10.0, clock=clock)
    circuit.record_failure(timed_out=True)
    circuit.record_success()
    circuit.record_failure(timed_out=True)

    assert circuit.state is CircuitState.CLOSED


def test_a_success_resets_the_count_of_failures(clock: FakeClock) -> None:
    circuit = breaker(clock)
    circuit.record_failure()
    circuit.record_failure()
    circuit.record_success()
    circuit.record_failure()
    circuit.record_failure()

    assert circuit.state is CircuitState.CLOSED


def test_after_the_cooldown_one_probe_at_a_time_goes_through(clock: FakeClock) -> None:
    circuit = breaker(clock)
    for _ in range(3):
        circuit.record_failure()
    clock.now += 9.99
    assert circuit.allow() is False

    clock.now += 0.01
    assert circuit.state is CircuitState.HALF_OPEN
    assert circuit.allow() is True  # the probe
    assert [circuit.allow() for _ in range(5)] == [False] * 5  # the others still skip the primary
    clock.now += 100  # however long the probe takes
    assert circuit.allow() is False


def test_a_successful_probe_closes_the_circuit(clock: FakeClock) -> None:
    changes: list[CircuitState] = []
    circuit = breaker(clock, changes)
    for _ in range(3):
        circuit.record_failure()
    clock.now += 10
    assert circuit.allow()

    circuit.record_success()

    assert (circuit.state, circuit.allow(), circuit.allow()) == (CircuitState.CLOSED, True, True)
    assert changes == [CircuitState.CLOSED, CircuitState.OPEN, CircuitState.HALF_OPEN, CircuitState.CLOSED]
    # closed again, it takes the full threshold to open
    circuit.record_failure()
    circuit.record_failure()
    assert circuit.state is CircuitState.CLOSED


def test_a_failed_probe_opens_it_for_another_cooldown(clock: FakeClock) -> None:
    changes: list[CircuitState] = []
    circuit = breaker(clock, changes)
    for _ in range(3):
        circuit.record_failure()
    clock.now += 10
    assert circuit.allow()
    clock.now += 2  # the probe timed out

    circuit.record_failure()

    assert (circuit.state, circuit.allow()) == (CircuitState.OPEN, False)
    clock.now += 9.99
    assert circuit.allow() is False
    clock.now += 0.01
    assert circuit.allow() is True
    assert changes == [
        CircuitState.CLOSED,
        CircuitState.OPEN,
        CircuitState.HALF_OPEN,
        CircuitState.OPEN,
        CircuitState.HALF_OPEN,
    ]


def test_failures_of_calls_begun_before_it_opened_do_not_extend_the_cooldown(clock: FakeClock) -> None:
    circuit = breaker(clock)
    for _ in range(3):
        circuit.record_failure()
    clock.now += 9
    circuit.record_failure()  # a slow call from before, timing out late
    clock.now += 1

    assert circuit.allow() is True


def test_concurrent_callers_get_exactly_one_probe(clock: FakeClock) -> None:
    circuit = breaker(clock)
    for _ in range(3):
        circuit.record_failure()
    clock.now += 10
    start = threading.Barrier(16)
    granted: list[bool] = []
    lock = threading.Lock()

    def ask() -> None:
        start.wait()
        answer = circuit.allow()
        with lock:
            granted.append(answer)

    threads = [threading.Thread(target=ask) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(granted) == [False] * 15 + [True]


@pytest.mark.parametrize(("failures", "cooldown_s"), [(0, 10.0), (3, 0.0), (3, -1.0)])
def test_bad_limits_are_refused(failures: int, cooldown_s: float) -> None:
    with pytest.raises(ValueError, match="must be"):
        CircuitBreaker(failure_threshold=failures, cooldown_s=cooldown_s)


def test_a_timeout_threshold_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="timeout_threshold must be"):
        CircuitBreaker(failure_threshold=3, timeout_threshold=0, cooldown_s=10.0)
