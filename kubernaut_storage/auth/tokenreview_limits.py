"""What bounds the TokenReview calls a flood of bogus tokens can cause.

Without these, every distinct token a caller invents costs one TokenReview call: 2,000
invented tokens were 2,000 calls (~960/s from one client), which in a cluster gets this
service's account throttled by the API server and every uncached writer refused.

* `well_formed_jwt`: ServiceAccount tokens are signed JWTs; anything else is refused locally.
* `ReviewBudget`: at most `max_concurrent` calls in flight and `max_per_second` calls per
  second (a token bucket) per process; a review beyond them is refused at once (503 with a
  short Retry-After) instead of queueing on a thread. Cached verdicts never spend it.
"""

from __future__ import annotations

import base64
import json
import re
import threading
import time
from collections.abc import Callable

_BASE64URL = re.compile(r"[A-Za-z0-9_-]+")


def well_formed_jwt(token: str) -> bool:
    """Three base64url segments, the first a JSON object naming its `alg` (RFC 7519 / 7515).

    Only the shape: the signature is the API server's to check.
    """
    segments = token.split(".")
    if len(segments) != 3 or not all(_BASE64URL.fullmatch(segment) for segment in segments):
        return False
    encoded = segments[0]
    try:
        header = json.loads(base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)))
    except ValueError:  # bad base64, bad UTF-8, bad JSON
        return False
    return isinstance(header, dict) and isinstance(header.get("alg"), str) and bool(header["alg"])


class ReviewBudget:
    """Concurrency slots and a token bucket of `max_per_second` (burst: one second's worth)."""

    def __init__(
        self, *, max_concurrent: int, max_per_second: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._slots = threading.BoundedSemaphore(max_concurrent)
        self._rate = max_per_second
        self._capacity = max(1.0, max_per_second)
        self._available = self._capacity
        self._clock = clock
        self._refilled_at = clock()
        self._lock = threading.Lock()

    def acquire(self) -> bool:
        """Take a slot and one call's worth of the bucket; False (nothing taken) when either is out."""
        if not self._slots.acquire(blocking=False):
            return False
        with self._lock:
            now = self._clock()
            self._available = min(self._capacity, self._available + (now - self._refilled_at) * self._rate)
            self._refilled_at = now
            if self._available >= 1.0:
                self._available -= 1.0
                return True
        self._slots.release()
        return False

    def release(self) -> None:
        """Give the slot back once the call is over (its share of the bucket stays spent)."""
        self._slots.release()
