"""A circuit breaker for the primary embedding provider.

While the primary is down, every write would otherwise wait out its timeout and retries before
the fallback answers (seconds per write, and the worker threads with it). After
``failure_threshold`` consecutive failed calls, or ``timeout_threshold`` consecutive calls that
timed out among them, the circuit *opens*: calls skip the primary for ``cooldown_s``. Timeouts
have their own, lower threshold because each one cost its caller the whole timeout, and a
hanging primary makes every call in flight wait it out: at two calls in flight, five of them
took ~6 s of near-standstill to collect. Then it is *half-open*: one probe call at a time may
go to the primary, the others still skip it; a successful probe *closes* the circuit, a
failed one opens it for another cool-down.

One breaker per process (each gunicorn worker learns on its own), thread-safe. ``clock`` is
injectable so tests control time.
"""

from __future__ import annotations

import enum
import threading
import time
from collections.abc import Callable


class CircuitState(enum.IntEnum):
    # The values are the metric's: higher is worse, so a pod's maximum over its workers shows
    # the worst of them.
    CLOSED = 0
    HALF_OPEN = 1
    OPEN = 2


class CircuitBreaker:
    """Whether to call the primary (:meth:`allow`), told how each call went
    (:meth:`record_success`, :meth:`record_failure`).

    ``on_change(state)`` runs on every transition (and once at construction), outside the lock.
    """

    def __init__(
        self,
        *,
        failure_threshold: int,
        cooldown_s: float,
        timeout_threshold: int | None = None,
        clock: Callable[[], float] = time.monotonic,
        on_change: Callable[[CircuitState], None] | None = None,
    ) -> None:
        if failure_threshold < 1:
            raise ValueError("failure_threshold must be >= 1")
        if timeout_threshold is not None and timeout_threshold < 1:
            raise ValueError("timeout_threshold must be >= 1")
        if cooldown_s <= 0:
            raise ValueError("cooldown_s must be positive")
        self.failure_threshold = failure_threshold
        self.timeout_threshold = failure_threshold if timeout_threshold is None else timeout_threshold
        self.cooldown_s = cooldown_s
        self._clock = clock
        self._on_change = on_change
        self._lock = threading.Lock()
        self._state = CircuitState.CLOSED
        self._failures = 0
        self._timeouts = 0
        self._opened_at = 0.0
        self._probing = False
        self._notify(CircuitState.CLOSED)

    @property
    def state(self) -> CircuitState:
        """The state as callers see it: an open circuit whose cool-down is over is half-open."""
        with self._lock:
            if self._state is CircuitState.OPEN and self._clock() >= self._opened_at + self.cooldown_s:
                return CircuitState.HALF_OPEN
            return self._state

    def allow(self) -> bool:
        """True when this call may go to the primary. In the half-open state only one caller at
        a time gets True (the probe); it must then report with record_success/record_failure."""
        with self._lock:
            if self._state is CircuitState.CLOSED:
                return True
            if self._probing:
                return False
            if self._state is CircuitState.OPEN and self._clock() < self._opened_at + self.cooldown_s:
                return False
            changed = self._state is not CircuitState.HALF_OPEN
            self._state, self._probing = CircuitState.HALF_OPEN, True
        if changed:
            self._notify(CircuitState.HALF_OPEN)
        return True

    def record_success(self) -> None:
        with self._lock:
            changed = self._state is not CircuitState.CLOSED
            self._state, self._failures, self._timeouts, self._probing = CircuitState.CLOSED, 0, 0, False
        if changed:
            self._notify(CircuitState.CLOSED)

    def record_failure(self, *, timed_out: bool = False) -> None:
        with self._lock:
            if self._state is CircuitState.OPEN:
                # a call that started before the circuit opened: the cool-down already runs
                return
            self._failures += 1
            self._timeouts += timed_out
            below = self._failures < self.failure_threshold and self._timeouts < self.timeout_threshold
            if self._state is CircuitState.CLOSED and below:
                return
            self._state, self._opened_at, self._probing = CircuitState.OPEN, self._clock(), False
        self._notify(CircuitState.OPEN)

    def _notify(self, state: CircuitState) -> None:
        if self._on_change is not None:
            self._on_change(state)
