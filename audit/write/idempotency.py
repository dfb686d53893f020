"""Idempotency-Keys: a retried request with the same key and body gets the first answer again.

A key is claimed in the transaction that stores the record(s), so a claim exists exactly when
the write committed. The stored answer is replayed for the same body (hashed canonically) and
refused (422) for a different one. A key's scope is the endpoint's kind, or `batch`.

A key is only believed when the rows its stored answer names exist, with the key's actor (and,
for a single record, a payload that hashes to the key's recorded hash). Anything that can
INSERT into the keys table could otherwise plant a key under another caller's name and make
that caller's real request answer "replayed" with nothing written. Such a key is counted
(`kubernaut_idempotency_key_anomalies_total`), logged, and the request is written without it.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from django.db import connection
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from audit.models import AUDIT_MODELS, AuditKind, IdempotencyKey
from audit.write.statements import fingerprint_json
from kubernaut_storage.database.connections import connection_release
from kubernaut_storage.database.errors import with_db_retries
from kubernaut_storage.http.exceptions import IdempotencyKeyInFlight, IdempotencyKeyReused
from kubernaut_storage.observability.metrics import IDEMPOTENCY_KEY_ANOMALIES

logger = logging.getLogger(__name__)

#: A stored 201 body, replayed as it was answered.
Answer = dict[str, Any]


def request_sha256(payload: Mapping[str, Any]) -> str:
    """The hash a key keeps of the request that claimed it, to tell a retry from a reuse."""
    return hashlib.sha256(fingerprint_json(payload)).hexdigest()


class ConcurrentKeyClaimError(Exception):
    """Raised inside the write transaction to roll it back when the key was claimed first."""


class UntrustedIdempotencyKey(Exception):  # noqa: N818 - a verdict, not an error of ours
    """The claimed key names no matching audit row: write the request without the key."""


def idempotent_replay(
    *, actor: str, scope: str, key: str, payload_sha256: str, record_kinds: Sequence[AuditKind]
) -> Answer | None:
    """The stored answer for a retry, None for a new key, 422 for the key with another body.

    `record_kinds`: the kind of each record of this request, in order (one for a single write).
    Raises `UntrustedIdempotencyKey` (counted, logged) when the key's rows do not check out.
    """
    claimed = IdempotencyKey.objects.filter(actor=actor, scope=scope, key=key).first()
    if claimed is None:
        return None
    same_body = claimed.request_sha256 == payload_sha256
    if not _answer_checks_out(claimed, record_kinds=record_kinds if same_body else None):
        IDEMPOTENCY_KEY_ANOMALIES.inc()
        logger.warning("idempotency key %s of %s names no matching audit row; writing without it", claimed.id, actor)
        raise UntrustedIdempotencyKey
    if not same_body:
        raise IdempotencyKeyReused()
    return claimed.response_body


@dataclass(frozen=True, slots=True)
class KeyLookup:
    """Before a write: the stored answer to replay, if any, and the key the write must claim
    (None without a key, or when the stored key is not to be trusted)."""

    replay: Answer | None
    key: str | None


def idempotency_key_lookup(
    *, actor: str, scope: str, key: str | None, payload_sha256: str, record_kinds: Sequence[AuditKind]
) -> KeyLookup:
    """The replay check every write makes before embedding.

    A planted key (`UntrustedIdempotencyKey`) must not suppress the write: the request is then
    written without the key. When there is no replay the pooled connection is given back, as
    the embedding that follows may take a while.
    """
    if key is None:
        return KeyLookup(replay=None, key=None)
    claimed_key = key
    try:
        replay = with_db_retries(
            lambda: idempotent_replay(
                actor=actor, scope=scope, key=claimed_key, payload_sha256=payload_sha256, record_kinds=record_kinds
            )
        )
    except UntrustedIdempotencyKey:
        connection_release()
        return KeyLookup(replay=None, key=None)
    if replay is None:
        connection_release()
    return KeyLookup(replay=replay, key=claimed_key)


def replay_after_lost_claim(
    *, actor: str, scope: str, key: str, payload_sha256: str, record_kinds: Sequence[AuditKind]
) -> Answer:
    """A concurrent request with the same key committed first and our transaction rolled back:
    answer as a retry of that request would be."""
    replay = with_db_retries(
        lambda: idempotent_replay(
            actor=actor, scope=scope, key=key, payload_sha256=payload_sha256, record_kinds=record_kinds
        )
    )
    if replay is None:  # pragma: no cover - the conflicting row committed, so it exists
        raise IdempotencyKeyInFlight() from None
    return replay


def _answer_checks_out(claimed: IdempotencyKey, *, record_kinds: Sequence[AuditKind] | None) -> bool:
    """Whether every row the stored answer names exists, written by the key's actor.

    With `record_kinds` (the retried body is the stored one) each row is looked up in its own
    table; a single record's payload must also hash to the key's hash. Without (a different
    body, about to be refused 422) the first named row is looked for in every audit table.
    """
    body = claimed.response_body
    results = body.get("results", [body]) if isinstance(body, dict) else []
    try:
        ids = [int(result["id"]) for result in results]
        recorded_at = parse_datetime(str(results[0]["recordedAt"]))
    except (IndexError, KeyError, TypeError, ValueError):
        return False
    if recorded_at is None:
        return False
    if record_kinds is None:
        return any(
            model._default_manager.filter(id=ids[0], recorded_at=recorded_at, actor=claimed.actor).exists()
            for model in AUDIT_MODELS.values()
        )
    if len(record_kinds) != len(ids):
        return False
    if len(ids) == 1:
        row = AUDIT_MODELS[record_kinds[0]]._default_manager.filter(
            id=ids[0], recorded_at=recorded_at, actor=claimed.actor
        )
        payload = row.values_list("payload", flat=True).first()
        return payload is not None and request_sha256(payload) == claimed.request_sha256
    ids_by_kind: dict[AuditKind, list[int]] = {}
    for record_kind, record_id in zip(record_kinds, ids, strict=True):
        ids_by_kind.setdefault(record_kind, []).append(record_id)
    return all(
        AUDIT_MODELS[record_kind]
        ._default_manager.filter(id__in=kind_ids, recorded_at=recorded_at, actor=claimed.actor)
        .count()
        == len(set(kind_ids))
        for record_kind, kind_ids in ids_by_kind.items()
    )


def idempotency_key_claim(*, actor: str, scope: str, key: str, payload_sha256: str, body: dict[str, Any]) -> bool:
    """Claim the key in the current transaction; False if another request holds it.

    ON CONFLICT DO NOTHING waits for a concurrent uncommitted claim of the same key and then
    sees it committed (False) or rolled back (we claim it). The wait is bounded by the
    connection's lock_timeout, which surfaces as 409 (still in flight).
    """
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {IdempotencyKey._meta.db_table}"  # noqa: S608 - a constant table name
            " (actor, kind, key, request_sha256, response_body, created_at)"  # kind: the scope's column
            " VALUES (%s, %s, %s, %s, %s, %s)"
            " ON CONFLICT (actor, kind, key) DO NOTHING RETURNING id",
            [actor, scope, key, payload_sha256, fingerprint_json(body).decode(), timezone.now()],
        )
        return cursor.fetchone() is not None
