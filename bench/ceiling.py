"""The database's own ceiling for the write path: the service's statement, straight from psycopg.

`ceiling_statements` asks the service's code, once and outside the measurement, for the
statements it would send for the cached scenario's bodies (audit/write/statements.py:
`record_insert_statement`: the same SQL, the same parameters, the vector of the remote model).
`ceiling_run` then sends them from `connections` threads, each on its own autocommit psycopg
connection, as fast as PostgreSQL answers: the same schema, indexes and transaction shape
(one statement, committed on its own, prepared after five uses, binary vector), with no HTTP,
no Django and no embedding lookup in the way.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from pgvector.psycopg.vector import register_vector_info
from psycopg.types import TypeInfo

#: The model the cached and remote scenarios embed with (testutils/openai_server.py).
REMOTE_MODEL = "text-embedding-3-small"


@dataclass(frozen=True, slots=True)
class Statement:
    sql: str
    params: tuple[Any, ...]


def ceiling_statements(
    templates: Path,
    *,
    count: int,
    model: str = REMOTE_MODEL,
    dimensions: int = 1536,
    vectors: list[Any] | None = None,
    actor: str = "local:unauthenticated",
) -> list[Statement]:
    """The statements the service sends for `count` template bodies (cycling through them), each
    with the vector the remote embedder answers for its text, or the next of `vectors`
    (needs Django set up)."""
    import orjson
    from django.utils import timezone

    from audit.api.serializers import audit_validated
    from audit.models import AuditKind
    from audit.write.statements import RecordRow, record_content_sha256, record_insert_statement
    from audit.write.texts import audit_text
    from embeddings.providers.base import Embedding
    from embeddings.services import text_sha256
    from testutils.openai_server import deterministic_vector

    statements = []
    lines = templates.read_bytes().splitlines()
    for number in range(count):
        path, raw = lines[number % len(lines)].split(b"\t", 1)
        kind = AuditKind(path.decode().rstrip("/").rsplit("/", 1)[1])
        payload = orjson.loads(raw.replace(b"@ID@", f"ceiling-{number}".encode()))
        data = audit_validated(kind=kind, data=payload)
        text = audit_text(kind=kind, data=data)
        recorded_at = timezone.now()
        row = RecordRow(
            index=0,
            data=data,
            payload=payload,
            embedding=Embedding(
                vector=deterministic_vector(model, text, dimensions) if vectors is None else vectors[number],
                model=model,
            ),
            input_sha256=text_sha256(text),
            content_sha256=record_content_sha256(payload=payload, recorded_at=recorded_at, actor=actor),
        )
        statement = record_insert_statement(
            kind=kind, row=row, actor=actor, request_id=f"ceiling{number}", recorded_at=recorded_at
        )
        statements.append(Statement(sql=statement.sql, params=statement.params))
    return statements


@dataclass
class CeilingResult:
    connections: int
    seconds: float
    warmup_s: float
    latencies_s: list[float] = field(default_factory=list)
    errors: int = 0

    @property
    def writes_per_s(self) -> float:
        return len(self.latencies_s) / self.seconds if self.seconds else 0.0

    def percentile_ms(self, q: float) -> float:
        ordered = sorted(self.latencies_s)
        if not ordered:
            return 0.0
        return 1000 * ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    def as_row(self) -> dict[str, Any]:
        return {
            "scenario": "ceiling",
            "concurrency": self.connections,
            "requests": len(self.latencies_s),
            "seconds": round(self.seconds, 2),
            "writes_per_s": self.writes_per_s,
            "p50_ms": self.percentile_ms(0.50),
            "p95_ms": self.percentile_ms(0.95),
            "p99_ms": self.percentile_ms(0.99),
            "max_ms": 1000 * max(self.latencies_s, default=0.0),
            "non2xx": None,
            "errors": self.errors,
        }


def event_ceiling_statements(templates: Path, *, count: int, actor: str = "local:unauthenticated") -> list[Statement]:
    """The INSERT the service sends for `count` audit-event batch bodies of `templates` (cycling
    through them; each `@ID@` made unique), as `audit/write/events.py` builds it (needs Django)."""
    import orjson
    from django.utils import timezone

    from audit.api.events.encoding import event_json_loads
    from audit.api.events.serializers import audit_events_validated
    from audit.event_ids import event_id_new
    from audit.write.events import events_insert_statement

    statements = []
    lines = templates.read_bytes().splitlines()
    now = timezone.now()
    for number in range(count):
        raw = lines[number % len(lines)].split(b"\t", 1)[1].replace(b"@ID@", f"ceiling-{number}".encode())
        events = audit_events_validated(data=event_json_loads(raw), now=now, max_events=len(orjson.loads(raw)))
        statement = events_insert_statement(
            events=events,
            event_ids=[event_id_new() for _ in events],
            recorded_at=now,
            actor=actor,
            request_id=f"ceiling-{number}",
        )
        statements.append(Statement(statement.sql, statement.params))
    return statements


def ceiling_run(
    conninfo: str,
    statements: list[Statement],
    *,
    connections: int,
    duration_s: float,
    warmup_s: float = 2.0,
    prepare_threshold: int | None = 5,
) -> CeilingResult:
    """Send `statements` round-robin from `connections` threads for `warmup_s` + `duration_s`.

    Only statements that start after the warm-up and finish within the measured window count.
    Any error is counted, not retried: the ceiling of a failing database is no ceiling.
    """
    if not statements:
        raise ValueError("no statements to send")
    result = CeilingResult(connections=connections, seconds=duration_s, warmup_s=warmup_s)
    lock = threading.Lock()
    # All connections open first; then the clock starts for everyone at once.
    connected, go = threading.Barrier(connections + 1), threading.Barrier(connections + 1)
    timing: dict[str, float] = {}

    def worker(offset: int) -> None:
        latencies, errors = [], 0
        with psycopg.connect(conninfo, autocommit=True, prepare_threshold=prepare_threshold) as conn:
            register_vector_info(conn, TypeInfo.fetch(conn, "vector"))
            connected.wait()
            go.wait()
            measure_from, stop_at = timing["measure_from"], timing["stop_at"]
            index = offset
            while True:
                statement = statements[index % len(statements)]
                index += 1
                started = time.perf_counter()
                if started >= stop_at:
                    break
                try:
                    with conn.cursor() as cursor:
                        cursor.execute(statement.sql, statement.params)
                        cursor.fetchone()
                except psycopg.Error:
                    errors += 1
                    continue
                finished = time.perf_counter()
                if started >= measure_from and finished <= stop_at:
                    latencies.append(finished - started)
        with lock:
            result.latencies_s.extend(latencies)
            result.errors += errors

    threads = [threading.Thread(target=worker, args=(n * 7,), daemon=True) for n in range(connections)]
    for thread in threads:
        thread.start()
    connected.wait()
    now = time.perf_counter()
    timing["measure_from"] = now + warmup_s
    timing["stop_at"] = now + warmup_s + duration_s
    go.wait()
    for thread in threads:
        thread.join()
    return result
