"""One process's concurrent embedding requests, coalesced into fewer provider calls.

Why (docs/PERFORMANCE.md): one call through the `openai` client costs ~2 ms of Python (request
building, httpx2, response models), a third of a write's CPU when every text is new, and
every call counts against the API's requests-per-minute limit: a replica writing 300 new
records a second would make 18,000 calls a minute. (The local model is not wrapped: batched
under load it ran no faster and took twice the memory.)

How: at most `max_in_flight` calls to the provider run at once. A request that finds a call
slot free goes out immediately, so a quiet service adds no latency; requests that arrive
while every slot is busy queue, and the next free slot sends the queue's head, up to
`max_batch` texts, in one call. Under load one call then carries several texts; the batch
size adapts to the load without any timer.

What it promises the chain (embeddings/chain.py), which sees it as the provider:
- each caller gets the vectors of its own texts, in order, or the call's error: a batch's
  failure is the failure of every request in it, and each caller retries, falls back or
  defers on its own (their retries coalesce again);
- a request waits at most `queue_timeout_s` for a call slot, then fails as retryable, so a
  hanging provider delays a write by about one queue wait more than its timeout, not by a
  queue of timeouts.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from .providers.base import EmbeddingProvider, EmbeddingProviderError, Vector

#: Told the number of distinct texts of every call made (for a histogram).
BatchHook = Callable[[int], None]


@dataclass(eq=False, slots=True)
class _Request:
    texts: list[str]
    vectors: list[Vector] = field(default_factory=list)
    error: BaseException | None = None
    #: Set when the request is done, or when a finished call handed its slot to this request
    #: (then `batch` is what it is to send). One event per request, so a finished call wakes
    #: exactly the threads it concerns, not every waiting thread.
    wake: threading.Event = field(default_factory=threading.Event)
    batch: list[_Request] | None = None


class CoalescingProvider:
    """A provider that sends concurrent requests of this process together (see the module)."""

    def __init__(
        self,
        inner: EmbeddingProvider,
        *,
        max_in_flight: int,
        max_batch: int,
        queue_timeout_s: float,
        on_batch: BatchHook | None = None,
    ) -> None:
        if max_in_flight < 1 or max_batch < 1:
            raise ValueError("max_in_flight and max_batch must be >= 1")
        if queue_timeout_s <= 0:
            raise ValueError("queue_timeout_s must be positive")
        self.inner = inner
        self.name = inner.name
        self.model = inner.model
        self.max_in_flight = max_in_flight
        self.max_batch = max_batch
        self.queue_timeout_s = queue_timeout_s
        self._on_batch = on_batch
        self._lock = threading.Lock()
        self._queue: deque[_Request] = deque()
        self._in_flight = 0

    def embed(self, texts: Sequence[str]) -> list[Vector]:
        request = _Request(list(texts))
        if not request.texts:
            return []
        with self._lock:
            self._queue.append(request)
            if self._in_flight < self.max_in_flight:
                self._in_flight += 1
                request.batch = self._take()
        if request.batch is None:
            self._wait(request)
        if request.batch is not None:
            # This thread holds a call slot: it sends the batch, its own request included.
            self._send(request.batch)
        if request.error is not None:
            raise request.error
        return request.vectors

    def _wait(self, request: _Request) -> None:
        """Until `request` is done or handed a call slot; queued at most queue_timeout_s."""
        if request.wake.wait(self.queue_timeout_s):
            return
        with self._lock:
            # Still queued means no call took it: neither sent in a batch nor handed a slot.
            if request in self._queue:
                self._queue.remove(request)
                request.error = EmbeddingProviderError(
                    f"{self.name}: no free call slot within {self.queue_timeout_s:g}s "
                    f"({self.max_in_flight} calls in flight)",
                    retryable=True,
                    timed_out=True,
                )
                return
        # Taken into a call meanwhile: that call is bounded by the provider's own timeout.
        request.wake.wait()

    def _take(self) -> list[_Request]:
        """Under the lock: the queue's head and what follows it, up to max_batch texts."""
        # The head always goes, even alone above max_batch: a request is never split.
        batch = [self._queue.popleft()]
        size = len(batch[0].texts)
        while self._queue and size + len(self._queue[0].texts) <= self.max_batch:
            size += len(self._queue[0].texts)
            batch.append(self._queue.popleft())
        return batch

    def _send(self, batch: list[_Request]) -> None:
        # Concurrent writes of the same incident often share a text: ask for it once.
        distinct = list(dict.fromkeys(text for queued in batch for text in queued.texts))
        # Whatever happens here, every caller of the batch gets an answer: an exception that
        # is not an Exception (the thread being torn down) leaves them this one.
        outcome: list[Vector] | Exception = EmbeddingProviderError(f"{self.name}: the call was interrupted")
        try:
            if self._on_batch is not None:
                self._on_batch(len(distinct))
            vectors = self.inner.embed(distinct)
            if len(vectors) != len(distinct):
                raise EmbeddingProviderError(
                    f"{self.name}: {len(vectors)} vectors for {len(distinct)} texts", retryable=False
                )
            outcome = vectors
        except Exception as exc:  # every caller of the batch re-raises it
            outcome = exc
        finally:
            self._finish(batch, distinct, outcome)

    def _finish(self, batch: list[_Request], distinct: list[str], outcome: list[Vector] | Exception) -> None:
        by_text = dict(zip(distinct, outcome, strict=True)) if isinstance(outcome, list) else {}
        for queued in batch:
            if isinstance(outcome, Exception):
                queued.error = outcome
            else:
                queued.vectors = [by_text[text] for text in queued.texts]
        with self._lock:
            if self._queue:
                # The slot passes to the queue's head, which sends what queued meanwhile.
                head = self._queue[0]
                head.batch = self._take()
                head.wake.set()
            else:
                self._in_flight -= 1
        for queued in batch:
            queued.wake.set()
