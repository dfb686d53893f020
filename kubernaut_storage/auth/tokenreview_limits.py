"""What bounds the TokenReview calls a flood of bogus tokens can cause, and shares them fairly.

Without these, every distinct token a caller invents costs one TokenReview call: 2,000
invented tokens were 2,000 calls (~960/s from one client), which in a cluster gets this
service's account throttled by the API server and every uncached writer refused.

* `well_formed_jwt`: ServiceAccount tokens are signed JWTs; anything else is refused locally.
* `ReviewBudget`: at most `max_concurrent` calls in flight and `max_per_second` calls per
  second per process; a review beyond them is refused at once (503 with a short Retry-After)
  instead of queueing on a thread. Cached verdicts never spend it.

The budget is shared evenly among the clients asking for reviews, not first come first
served: with one bucket, a flood of invented tokens from one client took nearly every review
of a second, and only 3 to 6 of 31 new writers got through at their first try. Now each
client asking has its own bucket of an even share of the rate (and of the calls in flight),
so a new client's first review starts at once and a flooding client only spends its own share.

A client is the connection's peer address (REMOTE_ADDR, never a header the client writes).
Callers reach the API through its ClusterIP Service, whose address kube-proxy translates to a
pod's without hiding the caller's: the peer is the calling pod. Everything behind a source
NAT (a NodePort or LoadBalancer with externalTrafficPolicy: Cluster, a sidecar proxy that
opens its own connections) is one client and shares one share.
"""

from __future__ import annotations

import base64
import json
import math
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

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


#: A client that has asked for no review this long no longer counts in the even shares.
CLIENT_IDLE_SECONDS = 10.0
#: Clients tracked at once (least recently asking forgotten first): the state stays small
#: however many addresses ask.
MAX_CLIENTS = 4096


@dataclass
class _ClientShare:
    available: float
    refilled_at: float
    asked_at: float
    in_flight: int = 0


class ReviewBudget:
    """`max_concurrent` calls in flight and `max_per_second` calls a second, shared evenly.

    Each client asking within the last CLIENT_IDLE_SECONDS has a token bucket filled at
    `max_per_second` / (clients asking) and holding one second of that (at least one call), and
    may hold that share of `max_concurrent` (at least one). A client new to the budget starts
    with a full bucket. The process never has more than `max_concurrent` calls in flight; its
    rate stays near `max_per_second` however many clients ask (each new client adds at most
    its first bucket).
    """

    def __init__(
        self, *, max_concurrent: int, max_per_second: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._max_concurrent = max_concurrent
        self._rate = max_per_second
        self._clock = clock
        self._in_flight = 0
        # Least recently asking first.
        self._clients: OrderedDict[str, _ClientShare] = OrderedDict()
        self._lock = threading.Lock()

    def acquire(self, client: str) -> bool:
        """Take a call in flight and one call's worth of `client`'s bucket; False (nothing taken) when out."""
        with self._lock:
            now = self._clock()
            self._forget_idle(now)
            share = self._clients.get(client)
            if share is None:
                share = self._clients[client] = _ClientShare(
                    available=self._capacity(len(self._clients) + 1), refilled_at=now, asked_at=now
                )
            self._clients.move_to_end(client)
            share.asked_at = now
            asking = len(self._clients)
            share.available = min(
                self._capacity(asking), share.available + (now - share.refilled_at) * self._rate / asking
            )
            share.refilled_at = now
            slots = max(1, math.ceil(self._max_concurrent / asking))
            if self._in_flight >= self._max_concurrent or share.in_flight >= slots or share.available < 1.0:
                return False
            share.available -= 1.0
            share.in_flight += 1
            self._in_flight += 1
            return True

    def release(self, client: str) -> None:
        """Give the call in flight back once it is over (its share of the bucket stays spent)."""
        with self._lock:
            self._in_flight -= 1
            share = self._clients.get(client)
            if share is not None:
                share.in_flight -= 1

    def _capacity(self, asking: int) -> float:
        return max(1.0, self._rate / asking)

    def _forget_idle(self, now: float) -> None:
        # A client with a call in flight is kept: its release must find it.
        for client, share in list(self._clients.items()):
            idle = now - share.asked_at >= CLIENT_IDLE_SECONDS
            if share.in_flight == 0 and (idle or len(self._clients) >= MAX_CLIENTS):
                del self._clients[client]
            elif not idle and len(self._clients) < MAX_CLIENTS:
                break
