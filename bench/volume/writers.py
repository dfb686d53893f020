"""A light, steady write load through the real service, to see what a job does to the writes.

`threads` clients post fresh records (bench/workload.py's templates: the four kinds, a new
embedding text every time) over keep-alive HTTP connections, together at `rate` writes/s.
Each client keeps its own schedule and never catches up: a write that is late (the service
slow or blocked behind a lock) pushes the next one back, so a stall shows as writes lost
from the rate, not as a burst afterwards that would hide it. Every write is recorded (when it
ended, how long it took, its status); `window` summarises any stretch of time.
"""

from __future__ import annotations

import http.client
import statistics
import threading
import time
from dataclasses import dataclass
from typing import Any

from bench.workload import templates

#: 64 ordinary words: a write's phrase is its number in base 64, as bench/post.lua writes it.
WORDS = [
    "amber", "basalt", "cedar", "delta", "ember", "falcon", "garnet", "harbor", "indigo", "juniper", "kestrel",
    "lantern", "meadow", "nickel", "orchid", "pepper", "quartz", "raven", "saffron", "timber", "umber", "violet",
    "willow", "yarrow", "zephyr", "anchor", "bramble", "copper", "dune", "elm", "fjord", "glacier", "hazel",
    "iris", "jasper", "kelp", "lichen", "maple", "nectar", "oak", "pebble", "quill", "reed", "sorrel", "thistle",
    "upland", "vale", "wren", "acorn", "birch", "clover", "dahlia", "egret", "fern", "grove", "heron", "islet",
    "jade", "kiln", "larch", "moss", "nutmeg", "opal", "pine",
]  # fmt: skip
TIMEOUT_S = 30.0


def phrase(number: int) -> str:
    parts = []
    for _ in range(4):
        parts.append(WORDS[number % 64])
        number //= 64
    return " ".join(parts)


@dataclass(frozen=True, slots=True)
class Write:
    ended: float
    seconds: float
    status: int  # 0: no answer (connection error or timeout)


class Writers:
    """The write load: `start()`, then `window(start, end)` as often as needed, then `stop()`."""

    def __init__(self, *, url: str, rate: float, threads: int, salt: str) -> None:
        host, port = url.removeprefix("http://").split(":")
        self.address = (host, int(port))
        self.interval = threads / rate
        self.threads = threads
        self.salt = salt
        self.bodies = templates(count=200, fresh=True)
        self.writes: list[Write] = []
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.workers: list[threading.Thread] = []

    def start(self) -> Writers:
        for number in range(self.threads):
            thread = threading.Thread(target=self._client, args=(number,), name=f"writer-{number}", daemon=True)
            thread.start()
            self.workers.append(thread)
        return self

    def stop(self) -> None:
        self.stopping.set()
        for thread in self.workers:
            thread.join(timeout=TIMEOUT_S + 5)

    def _client(self, number: int) -> None:
        connection = http.client.HTTPConnection(*self.address, timeout=TIMEOUT_S)
        # The clients start spread over one interval, not all at once.
        due = time.monotonic() + self.interval * number / self.threads
        count = 0
        while not self.stopping.is_set():
            pause = due - time.monotonic()
            if pause > 0 and self.stopping.wait(pause):
                break
            count += 1
            endpoint, template = self.bodies[(number * 50 + count) % len(self.bodies)]
            body = template.replace(b"@ID@", f"{self.salt}-{number}-{count}".encode()).replace(
                b"@WORDS@", phrase(number * 1_000_003 + count).encode()
            )
            began = time.monotonic()
            try:
                connection.request("POST", endpoint, body=body, headers={"Content-Type": "application/json"})
                response = connection.getresponse()
                response.read()
                status = response.status
            except (OSError, http.client.HTTPException):
                connection.close()
                connection = http.client.HTTPConnection(*self.address, timeout=TIMEOUT_S)
                status = 0
            ended = time.monotonic()
            with self.lock:
                self.writes.append(Write(ended, ended - began, status))
            due = max(due + self.interval, ended)
        connection.close()

    def window(self, start: float, end: float) -> dict[str, Any]:
        """The writes that ended in [start, end) (time.monotonic())."""
        with self.lock:
            writes = [write for write in self.writes if start <= write.ended < end]
        seconds = [write.seconds * 1000 for write in writes]
        created = sum(write.status == 201 for write in writes)
        ordered = sorted(seconds)
        return {
            "seconds": round(end - start, 2),
            "writes": len(writes),
            # The rate that counts: records stored.
            "writes_per_s": round(created / (end - start), 2) if end > start else None,
            "created": created,
            "failed": sum(write.status != 201 for write in writes),
            "p50_ms": round(statistics.median(seconds), 1) if seconds else None,
            "p95_ms": round(ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))], 1) if ordered else None,
            "max_ms": round(ordered[-1], 1) if ordered else None,
        }
