"""Retrying an operation with exponential backoff and full jitter, within a count and a budget.

The one retry loop of the service: the write path retries transient database errors with it,
the embedding chain its primary provider. Full jitter (a sleep drawn from 0 to the capped
exponential backoff) spreads clients that failed together, so their retries do not stampede
a recovering dependency in lock-step.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    #: retries after the first attempt
    retries: int
    base_backoff_s: float
    max_backoff_s: float = math.inf
    #: no retry starts after this long from the first attempt (sleeping into it is pointless:
    #: there would be no time left for the call); None: only the count bounds the retries
    budget_s: float | None = None

    def __post_init__(self) -> None:
        if self.retries < 0:
            raise ValueError("retries must be >= 0")
        if self.base_backoff_s < 0 or self.max_backoff_s < self.base_backoff_s:
            raise ValueError("need 0 <= base_backoff_s <= max_backoff_s")
        if self.budget_s is not None and self.budget_s <= 0:
            raise ValueError("budget_s must be positive")

    def backoff_cap(self, retry: int) -> float:
        """Upper bound of the sleep before retry number `retry` (0-based)."""
        return min(self.max_backoff_s, self.base_backoff_s * 2.0**retry)


class RetriesExhausted(Exception):  # noqa: N818 - a condition, not an error of the caller
    """Raised from the last failure once the retries (`reason="retries"`) or the time budget
    (`reason="budget"`) are spent; `attempts` counts every call made."""

    def __init__(self, *, reason: str, attempts: int) -> None:
        super().__init__(f"gave up after {attempts} attempts ({reason} exhausted)")
        self.reason = reason
        self.attempts = attempts


def call_with_retries(
    operation: Callable[[], T],
    *,
    policy: RetryPolicy,
    retryable: Callable[[Exception], bool],
    on_retry: Callable[[int, Exception, float], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    rng: Callable[[], float] = random.random,
) -> T:
    """`operation()`, called again after an exception `retryable` accepts.

    An exception `retryable` refuses propagates unchanged. `on_retry(attempt, error, delay)`
    runs before each sleep (1-based attempt that failed).
    """
    deadline = None if policy.budget_s is None else clock() + policy.budget_s
    attempt = 0
    while True:
        attempt += 1
        try:
            return operation()
        except Exception as error:
            if not retryable(error):
                raise
            if attempt > policy.retries:
                raise RetriesExhausted(reason="retries", attempts=attempt) from error
            delay = policy.backoff_cap(attempt - 1) * rng()
            if deadline is not None and clock() + delay >= deadline:
                raise RetriesExhausted(reason="budget", attempts=attempt) from error
            if on_retry is not None:
                on_retry(attempt, error, delay)
        sleep(delay)
