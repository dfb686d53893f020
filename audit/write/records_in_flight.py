"""Records in flight per worker: what bounds the memory the write path holds at once.

What a batch holds grows with its records: their validated data, texts, vectors, the
statement's arrays and the answer (~27 KB of RSS a record), and, while the local model embeds
them, one inference's activations (`bench/scripts/abuse.py batches`, docs/SECURITY.md).
Concurrent batches add up: without a bound, 16 clients posting maximum-size batches took a pod
to 4.4 GB, far over its 1536 Mi limit. So a worker admits at most AUDIT_RECORDS_IN_FLIGHT
records at once, across its threads, whatever the number of requests; a request whose records
do not fit now is answered 503 with Retry-After at once, holding nothing while it is refused.
Never 413 or 429: the batch is valid, and the caller only has to send it again as it is.

Any endpoint that takes many records in one request takes them from this one budget. A
request of more records than the whole budget waits for none: it is admitted when the worker
holds no other records, and counts as the whole budget meanwhile. Single-record requests take
nothing from it; the worker's threads bound them.

An endpoint may wait a bounded time for room instead of refusing at once (`wait_s`): upstream
Kubernaut's controllers, which post batches of 1000 audit events, retry a 503 only twice, 1 s
and 2 s later, and then drop the batch, while a batch ahead takes a fraction of a second to
store. A waiting request holds its body as received and a thread, never records of the budget.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from django.conf import settings

from kubernaut_storage.http.exceptions import ServiceUnavailable


class RecordsInFlightFull(ServiceUnavailable):
    """The worker holds as many records as it may: the caller sends the same request again."""

    default_detail = "The service holds as many records as it can at once; nothing was stored. Retry shortly."
    default_code = "records_in_flight_full"
    #: About one maximum-size batch's time: by then the records ahead have usually been stored.
    retry_after = 2


class RecordsInFlight:
    """A counting semaphore on records that refuses instead of waiting."""

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError("capacity must be >= 1")
        self.capacity = capacity
        self._held = 0
        self._lock = threading.Lock()
        #: Notified whenever records are given back: a waiting request looks again.
        self._given_back = threading.Condition(self._lock)

    @property
    def held(self) -> int:
        return self._held

    @property
    def full(self) -> bool:
        """No request could be admitted now: one may be refused before its body is even read."""
        return self._held >= self.capacity

    def room_awaited(self, *, wait_s: float) -> None:
        """Return once the budget is not full, waiting at most `wait_s`; RecordsInFlightFull then."""
        with self._given_back:
            if not self._given_back.wait_for(lambda: self._held < self.capacity, timeout=wait_s):
                raise RecordsInFlightFull()

    @contextmanager
    def admitted(self, records: int, *, wait_s: float = 0.0) -> Iterator[None]:
        """Hold `records` of the budget for the block; RecordsInFlightFull when they do not fit
        (after waiting up to `wait_s` for them to)."""
        need = min(max(records, 1), self.capacity)
        deadline = time.monotonic() + wait_s
        with self._given_back:
            while self._held + need > self.capacity:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise RecordsInFlightFull()
                self._given_back.wait(remaining)
            self._held += need
        try:
            yield
        finally:
            with self._given_back:
                self._held -= need
                self._given_back.notify_all()


_budget: RecordsInFlight | None = None
_budget_lock = threading.Lock()


def records_in_flight() -> RecordsInFlight:
    """This process's budget, AUDIT_RECORDS_IN_FLIGHT records (made anew when the setting changes)."""
    global _budget
    capacity = settings.AUDIT_RECORDS_IN_FLIGHT
    with _budget_lock:
        if _budget is None or _budget.capacity != capacity:
            _budget = RecordsInFlight(capacity)
        return _budget
