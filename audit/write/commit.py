"""The skeleton every audit write shares, from its Idempotency-Key to its COMMIT.

    Idempotency-Key already claimed? ─► the stored answer again (or 422 for another body)
    prepare() ─► the write's statements (its texts embedded first, outside any transaction)
    one transaction: the statements, then the key claim ─► COMMIT
    key claimed meanwhile by a concurrent request? ─► rolled back, that request's answer
    deferred embeddings counted once committed

A write of one statement without a key (the usual single record) is that statement alone,
committed with it: one round trip. Transient database errors are retried; a database that
stays down is a 503. Nothing is acknowledged that has not committed.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from django.db import connection, transaction

from audit.write.idempotency import (
    ConcurrentKeyClaimError,
    idempotency_key_claim,
    idempotency_key_lookup,
    replay_after_lost_claim,
    request_sha256,
)
from audit.write.statements import AuditStatement
from kubernaut_storage.database.errors import with_db_retries
from kubernaut_storage.observability.metrics import EMBEDDING_DEFERRALS


@dataclass(frozen=True, slots=True)
class AuditWrite:
    """What a write answered: the 201 body, and whether it was an idempotent replay."""

    body: dict[str, Any]
    replayed: bool


@dataclass(frozen=True, slots=True)
class PreparedWrite:
    """A write ready to run: its statements and what its answer is made of."""

    statements: Sequence[AuditStatement]
    recorded_at: dt.datetime
    #: The correlation id of each record, in the request's order.
    correlation_ids: Sequence[str]
    #: The 201 body, from the records' own bodies in the request's order.
    answer: Callable[[list[dict[str, Any]]], dict[str, Any]]
    #: Records stored without an embedding, for `embeddings_backfill`.
    deferred: int


def audit_write_commit(
    *,
    scope: str,
    actor: str,
    idempotency_key: str | None,
    payload: Mapping[str, Any],
    prepare: Callable[[], PreparedWrite],
) -> AuditWrite:
    """Replay the answer an Idempotency-Key already holds, or `prepare()` the write, run it and
    claim the key in one transaction.

    `scope`: the key's scope (the endpoint); `payload`: the body as received, hashed for the
    key (only when there is one: a batch body is up to AUDIT_MAX_BODY_BYTES of JSON).
    """
    payload_sha256 = request_sha256(payload) if idempotency_key is not None else ""
    lookup = idempotency_key_lookup(actor=actor, scope=scope, key=idempotency_key, payload_sha256=payload_sha256)
    if lookup.replay is not None:
        return AuditWrite(body=lookup.replay, replayed=True)
    prepared = prepare()

    def write(key: str | None) -> AuditWrite:
        if key is None and len(prepared.statements) == 1 and not connection.in_atomic_block:
            return AuditWrite(body=_answer(prepared), replayed=False)
        # The key claim must commit with the rows; a caller's transaction gets a savepoint.
        with transaction.atomic():
            body = _answer(prepared)
            if key is not None and not idempotency_key_claim(
                actor=actor, scope=scope, key=key, payload_sha256=payload_sha256, body=body
            ):
                raise ConcurrentKeyClaimError
        return AuditWrite(body=body, replayed=False)

    claim = lookup.key
    try:
        written = with_db_retries(lambda: write(claim))
    except ConcurrentKeyClaimError:
        # A concurrent request with the same key committed first; our transaction rolled
        # back whole, so exactly one copy of the records exists.
        assert claim is not None
        stored = replay_after_lost_claim(actor=actor, scope=scope, key=claim, payload_sha256=payload_sha256)
        if stored is not None:
            return AuditWrite(body=stored, replayed=True)
        # The key was planted meanwhile (not believed, counted): the records are stored anyway.
        written = with_db_retries(lambda: write(None))
    if prepared.deferred:
        # Counted once the records and their backlog rows committed, not when the chain
        # failed: the metric then equals the rows `embeddings_backfill` has to do.
        EMBEDDING_DEFERRALS.inc(prepared.deferred)
    return written


def created_body(
    *, audit_id: int, embedding_id: int | None, correlation_id: str, recorded_at: dt.datetime
) -> dict[str, Any]:
    """The 201 body of one stored record (a batch answers one per record)."""
    return {
        "id": audit_id,
        "embeddingId": embedding_id,
        "embeddingStatus": "stored" if embedding_id is not None else "pending",
        "correlationId": correlation_id,
        "recordedAt": recorded_at.isoformat().replace("+00:00", "Z"),
    }


def _answer(prepared: PreparedWrite) -> dict[str, Any]:
    """Run the statements on the request's connection; the answer naming what they stored."""
    results: list[dict[str, Any]] = [{} for _ in prepared.correlation_ids]
    for statement in prepared.statements:
        for index, (audit_id, embedding_id) in zip(statement.indexes, statement.execute(), strict=True):
            results[index] = created_body(
                audit_id=audit_id,
                embedding_id=embedding_id,
                correlation_id=prepared.correlation_ids[index],
                recorded_at=prepared.recorded_at,
            )
    return prepared.answer(results)
