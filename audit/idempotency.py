"""Idempotency-Keys: a retried request with the same key and body gets the first answer again.

A key is claimed in the transaction that stores the record(s), so a claim exists exactly when
the write committed. The stored answer is replayed for the same body (hashed canonically) and
refused (422) for a different one.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson
from django.db import connection
from django.utils import timezone

from audit.models import IdempotencyKey
from kubernaut_storage.exceptions import IdempotencyKeyReused


@dataclass(frozen=True, slots=True)
class AuditWrite:
    """What a write answered: the 201 body, and whether it was an idempotent replay."""

    body: dict[str, Any]
    replayed: bool


def canonical_json(value: Any) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


def request_sha256(payload: Mapping[str, Any]) -> str:
    return hashlib.sha256(canonical_json(payload)).hexdigest()


class ConcurrentKeyClaimError(Exception):
    """Raised inside the write transaction to roll it back when the key was claimed first."""


def idempotent_replay(*, actor: str, kind: str, key: str, payload_sha256: str) -> AuditWrite | None:
    claimed = IdempotencyKey.objects.filter(actor=actor, kind=kind, key=key).first()
    if claimed is None:
        return None
    if claimed.request_sha256 != payload_sha256:
        raise IdempotencyKeyReused()
    return AuditWrite(body=claimed.response_body, replayed=True)


def idempotency_key_claim(*, actor: str, kind: str, key: str, payload_sha256: str, body: dict[str, Any]) -> bool:
    """Claim the key in the current transaction; False if another request holds it.

    ON CONFLICT DO NOTHING waits for a concurrent uncommitted claim of the same key and then
    sees it committed (False) or rolled back (we claim it). The wait is bounded by the
    connection's lock_timeout, which surfaces as 409 (still in flight).
    """
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {IdempotencyKey._meta.db_table}"  # noqa: S608 - a constant table name
            " (actor, kind, key, request_sha256, response_body, created_at)"
            " VALUES (%s, %s, %s, %s, %s, %s)"
            " ON CONFLICT (actor, kind, key) DO NOTHING RETURNING id",
            [actor, str(kind), key, payload_sha256, canonical_json(body).decode(), timezone.now()],
        )
        return cursor.fetchone() is not None
