"""The one retry loop: counts, budget, jitter bounds and what propagates."""

from __future__ import annotations

import pytest

from kubernaut_storage.database.retries import RetriesExhausted, RetryPolicy, call_with_retries


class Flaky:
    def __init__(self, failures: int, error: Exception) -> None:
        self.failures, self.error, self.calls = failures, error, 0

    def __call__(self) -> str:
        self.calls += 1
        if self.calls <= self.failures:
            raise self.error
        return "ok"


def test_retries_until_success_sleeping_within_the_capped_backoff():
    slept: list[float] = []
    operation = Flaky(3, ValueError("transient"))
    policy = RetryPolicy(retries=3, base_backoff_s=0.1, max_backoff_s=0.25)
    result = call_with_retries(operation, policy=policy, retryable=lambda e: True, sleep=slept.append, rng=lambda: 1.0)
    assert result == "ok"
    assert operation.calls == 4
    assert slept == [0.1, 0.2, 0.25]


def test_gives_up_after_the_retries_raising_from_the_last_error():
    error = ValueError("still down")
    with pytest.raises(RetriesExhausted) as raised:
        call_with_retries(
            Flaky(10, error),
            policy=RetryPolicy(retries=2, base_backoff_s=0.0),
            retryable=lambda e: True,
            sleep=lambda _: None,
        )
    assert (raised.value.reason, raised.value.attempts) == ("retries", 3)
    assert raised.value.__cause__ is error


def test_an_error_it_may_not_retry_propagates_unchanged_at_once():
    operation = Flaky(10, KeyError("bug"))
    with pytest.raises(KeyError):
        call_with_retries(
            operation,
            policy=RetryPolicy(retries=5, base_backoff_s=0.0),
            retryable=lambda e: False,
            sleep=lambda _: None,
        )
    assert operation.calls == 1


def test_no_retry_starts_past_the_budget():
    now = [0.0]
    operation = Flaky(10, ValueError("slow"))

    def sleep(seconds: float) -> None:
        now[0] += seconds

    with pytest.raises(RetriesExhausted) as raised:
        call_with_retries(
            operation,
            policy=RetryPolicy(retries=10, base_backoff_s=0.4, budget_s=1.0),
            retryable=lambda e: True,
            sleep=sleep,
            clock=lambda: now[0],
            rng=lambda: 1.0,
        )
    # slept 0.4 (t=0.4), then 0.8 would end at 1.2 >= 1.0: give up after the second call
    assert (raised.value.reason, raised.value.attempts) == ("budget", 2)
    assert now[0] == pytest.approx(0.4)


def test_on_retry_sees_each_failed_attempt_before_its_sleep():
    seen: list[tuple[int, float]] = []
    call_with_retries(
        Flaky(2, ValueError("x")),
        policy=RetryPolicy(retries=3, base_backoff_s=0.05),
        retryable=lambda e: True,
        on_retry=lambda attempt, error, delay: seen.append((attempt, delay)),
        sleep=lambda _: None,
        rng=lambda: 0.5,
    )
    assert seen == [(1, 0.025), (2, 0.05)]
