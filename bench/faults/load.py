"""The steady load of `python -m bench faults`: careful clients behind a Kubernetes-like balancer.

Each client posts audit records one after another, each a new record with a correlation id and
an Idempotency-Key of its own and a fresh text (so every write needs an embedding). A record
is delivered when a 201 comes back. A 503 (which must carry Retry-After) or a connection
closed without an answer is retried with the same key and body, as a controller would; any
other answer ends the record as rejected. Every attempt and its outcome is kept, so the
suite can say afterwards what reached the clients and when.

Each request opens its own connection: "the connection was closed without an answer" then
always means a request the service had accepted, never a keep-alive connection it closed
while idle, which a client cannot tell apart.

`Balancer` stands in for a Kubernetes Service in front of several pods: it polls every
instance's /readyz (as the kubelet does) and sends new connections to ready instances, never
to one that says it is draining or is down. When no instance is ready, requests go to the
ones that are up, so that what clients see in a shared outage (the database down) is the
service's own answer.
"""

from __future__ import annotations

import http.client
import itertools
import json
import random
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import orjson

from bench import stack

READY, UNREADY, DRAINING, DOWN = "ready", "unready", "draining", "down"
#: Outcomes of one attempt besides an HTTP status: the balancer had no instance up; the
#: connection was refused; it was closed without an answer; no answer within CLIENT_TIMEOUT_S.
NO_INSTANCE, REFUSED, DROPPED, TIMEOUT = "no-instance", "refused", "dropped", "timeout"
#: A client's bound on one request. The service bounds its own work well below it (pool
#: timeout, embedding budget, statement timeout), so reaching it is a finding.
CLIENT_TIMEOUT_S = 30.0
#: Clients wait min(Retry-After, this) before retrying, so that recovery is seen within a
#: second rather than at the header's granularity.
RETRY_WAIT_CAP_S = 1.0


@dataclass
class Instance:
    """One gunicorn, as one pod of the Deployment."""

    name: str
    service: stack.Service
    state: str = DOWN

    @property
    def port(self) -> int:
        return self.service.port


class Balancer:
    """Which instance a new connection goes to, from /readyz polled every `poll_s`."""

    def __init__(self, instances: list[Instance], *, poll_s: float = 0.1) -> None:
        self.instances = instances
        self.poll_s = poll_s
        self._round_robin = itertools.count()
        #: (monotonic time, instance name, state) on every change of an instance's state
        self.transitions: list[tuple[float, str, str]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, name="balancer", daemon=True)

    def start(self) -> Balancer:
        for instance in self.instances:
            self._set(instance, _probe(instance.port))
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def pick(self) -> Instance | None:
        for wanted in ((READY,), (UNREADY,)):
            candidates = [instance for instance in self.instances if instance.state in wanted]
            if candidates:
                return candidates[next(self._round_robin) % len(candidates)]
        return None

    def all_ready(self) -> bool:
        return all(instance.state == READY for instance in self.instances)

    def _poll(self) -> None:
        while not self._stop.wait(self.poll_s):
            for instance in self.instances:
                self._set(instance, _probe(instance.port))

    def _set(self, instance: Instance, state: str) -> None:
        if state != instance.state:
            instance.state = state
            self.transitions.append((time.monotonic(), instance.name, state))


def _probe(port: int) -> str:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=3)
    try:
        connection.request("GET", "/readyz")
        response = connection.getresponse()
        body = response.read()
    except OSError:
        return DOWN
    finally:
        connection.close()
    if response.status == 200:
        return READY
    try:
        problem_type = str(json.loads(body).get("type", ""))
    except ValueError:
        problem_type = ""
    return DRAINING if problem_type.endswith("/draining") else UNREADY


@dataclass
class Attempt:
    started: float
    ended: float
    #: the HTTP status as a string ("201", "503", ...) or one of NO_INSTANCE ... TIMEOUT
    outcome: str
    instance: str = ""
    retry_after: str | None = None
    detail: str = ""


@dataclass
class Record:
    path: str
    correlation_id: str
    key: str
    body: bytes
    attempts: list[Attempt] = field(default_factory=list)
    #: the 201 body, once delivered
    created: dict[str, Any] | None = None
    replayed: bool = False

    @property
    def kind(self) -> str:
        """The audit kind, the endpoint's last segment."""
        return self.path.rsplit("/", 1)[1]

    @property
    def acknowledged(self) -> bool:
        return self.created is not None


class Load:
    """`clients` threads posting records through `balancer` until `stop()`."""

    def __init__(
        self,
        *,
        balancer: Balancer,
        templates: list[tuple[str, bytes]],
        tag: str,
        clients: int,
        think_s: float,
        give_up_s: float,
    ) -> None:
        self.balancer = balancer
        self.templates = templates
        self.tag = tag
        self.clients = clients
        self.think_s = think_s
        self.give_up_s = give_up_s
        self.records: list[Record] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> Load:
        self.surge(self.clients)
        return self

    def surge(self, extra: int) -> threading.Event:
        """`extra` more clients, until the returned event is set (or the load stops)."""
        until = threading.Event()
        first = len(self._threads)
        for number in range(first, first + extra):
            thread = threading.Thread(target=self._client, args=(number, until), name=f"client-{number}", daemon=True)
            self._threads.append(thread)
            thread.start()
        return until

    def stop(self, *, timeout_s: float) -> bool:
        """Ask every client to finish its current record; False when one is still at it."""
        self._stopping.set()
        deadline = time.monotonic() + timeout_s
        for thread in self._threads:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))
        return not any(thread.is_alive() for thread in self._threads)

    def attempts(self) -> list[Attempt]:
        with self._lock:
            return [attempt for record in self.records for attempt in record.attempts]

    def _client(self, number: int, until: threading.Event) -> None:
        rng = random.Random(f"{self.tag}-{number}")
        for seq in itertools.count():
            if self._stopping.is_set() or until.is_set():
                return
            record = self._record(number, seq, rng)
            with self._lock:
                self.records.append(record)
            self._deliver(record, rng)
            self._stopping.wait(self.think_s * rng.uniform(0.5, 1.5))

    def _record(self, number: int, seq: int, rng: random.Random) -> Record:
        path, template = self.templates[rng.randrange(len(self.templates))]
        unique = f"{self.tag}-{number}-{seq}"
        words = " ".join(rng.choice(_WORDS) for _ in range(6))
        body = template.replace(b"@ID@", unique.encode()).replace(b"@WORDS@", f"{words} {unique}".encode())
        return Record(
            path=path,
            correlation_id=orjson.loads(body)["correlationId"],
            key=str(uuid.uuid4()),
            body=body,
        )

    def _deliver(self, record: Record, rng: random.Random) -> None:
        deadline = time.monotonic() + self.give_up_s
        while time.monotonic() < deadline:
            attempt, created, replayed = self._attempt(record)
            record.attempts.append(attempt)
            if created is not None:
                record.created, record.replayed = created, replayed
                return
            if attempt.outcome == "503":
                wait = min(float(attempt.retry_after or 1), RETRY_WAIT_CAP_S)
            elif attempt.outcome in (NO_INSTANCE, REFUSED, DROPPED, TIMEOUT):
                wait = 0.2
            else:
                return  # any other answer is final: the record is rejected
            time.sleep(wait * rng.uniform(0.5, 1.0))

    def _attempt(self, record: Record) -> tuple[Attempt, dict[str, Any] | None, bool]:
        started = time.monotonic()
        instance = self.balancer.pick()

        def attempt(outcome: str, **extra: Any) -> Attempt:
            name = instance.name if instance is not None else ""
            return Attempt(started=started, ended=time.monotonic(), outcome=outcome, instance=name, **extra)

        if instance is None:
            return attempt(NO_INSTANCE), None, False
        connection = http.client.HTTPConnection("127.0.0.1", instance.port, timeout=CLIENT_TIMEOUT_S)
        headers = {
            "Content-Type": "application/json",
            "Idempotency-Key": record.key,
            "X-Request-ID": f"{record.correlation_id}-{len(record.attempts)}",
            "Connection": "close",
        }
        try:
            connection.request("POST", record.path, body=record.body, headers=headers)
            response = connection.getresponse()
            data = response.read()
        except ConnectionRefusedError:
            return attempt(REFUSED), None, False
        except TimeoutError:
            return attempt(TIMEOUT), None, False
        except (http.client.HTTPException, ConnectionError) as exc:
            return attempt(DROPPED, detail=type(exc).__name__), None, False
        finally:
            connection.close()
        result = attempt(str(response.status), retry_after=response.getheader("Retry-After"))
        if response.status == 201:
            return result, orjson.loads(data), response.getheader("Idempotent-Replayed") == "true"
        result.detail = data[:300].decode(errors="replace")
        return result, None, False


def outcome_counts(attempts: list[Attempt]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for attempt in attempts:
        counts[attempt.outcome] = counts.get(attempt.outcome, 0) + 1
    return dict(sorted(counts.items()))


# Ordinary words for the fresh part of each text: a new phrase, so a new embedding cache key.
_WORDS = (
    *("amber", "basalt", "cedar", "delta", "ember", "falcon", "garnet", "harbor", "indigo", "juniper"),
    *("kestrel", "lantern", "meadow", "nickel", "orchid", "pepper", "quartz", "raven", "saffron", "timber"),
    *("umber", "violet", "willow", "yarrow", "zephyr", "anchor", "bramble", "copper"),
)
