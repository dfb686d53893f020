"""Idempotency-Keys: a retried request with the same key and body gets the first answer again.

A key is claimed in the transaction that stores the record(s), so a claim exists exactly when
the write committed. The stored answer is replayed for the same body (hashed canonically) and
refused (422) for a different one. A key's scope is the endpoint's kind, or `batch`.

A key is believed only when its row carries an HMAC, under the service's SECRET_KEY, of what
binds the answer to the request that produced it: scope, actor, key, the request's hash and
the answer itself. The database role of the API pods can INSERT key rows (it claims keys) but
cannot compute that HMAC: a key row it plants, naming a real row (which would make the real
request 422) or a forged one (which would make it "replayed" with nothing written), is not
believed. Such a key is counted (`kubernaut_idempotency_key_anomalies_total`), logged, and the
request is written without it: stored, loudly, never suppressed. Its retries, finding the same
planted key, are stored again and counted again.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import connection
from django.utils import timezone
from django.utils.crypto import constant_time_compare, salted_hmac

from audit.models import IdempotencyKey
from audit.write.statements import fingerprint_json
from kubernaut_storage.database.connections import connection_release
from kubernaut_storage.database.errors import with_db_retries
from kubernaut_storage.http.exceptions import IdempotencyKeyInFlight, IdempotencyKeyReused
from kubernaut_storage.observability.metrics import IDEMPOTENCY_KEY_ANOMALIES

logger = logging.getLogger(__name__)

#: A stored 201 body, replayed as it was answered.
Answer = dict[str, Any]

#: Keeps this HMAC apart from every other use of SECRET_KEY (sessions, signing).
_HMAC_SALT = "kubernaut_storage.audit.idempotency-key"


def request_sha256(payload: Mapping[str, Any]) -> str:
    """The hash a key keeps of the request that claimed it, to tell a retry from a reuse."""
    return hashlib.sha256(fingerprint_json(payload)).hexdigest()


class ConcurrentKeyClaimError(Exception):
    """Raised inside the write transaction to roll it back when the key was claimed first."""


@dataclass(frozen=True, slots=True)
class KeyLookup:
    """Before a write: the stored answer to replay, if any, and the key the write must claim
    (None without a key, or when the stored key is not believed)."""

    replay: Answer | None
    key: str | None


def idempotency_key_lookup(*, actor: str, scope: str, key: str | None, payload_sha256: str) -> KeyLookup:
    """The replay check every write makes before embedding; 422 for a believed key with another
    body.

    When there is no replay the pooled connection is given back, as the embedding that follows
    may take a while.
    """
    if key is None:
        return KeyLookup(replay=None, key=None)
    claimed = with_db_retries(lambda: IdempotencyKey.objects.filter(actor=actor, scope=scope, key=key).first())
    if claimed is None or not _believed(claimed):
        connection_release()
        return KeyLookup(replay=None, key=key if claimed is None else None)
    if claimed.request_sha256 != payload_sha256:
        raise IdempotencyKeyReused()
    return KeyLookup(replay=claimed.response_body, key=key)


def replay_after_lost_claim(*, actor: str, scope: str, key: str, payload_sha256: str) -> Answer | None:
    """A concurrent request with the same key committed first and our transaction rolled back:
    its answer, as a retry of that request would get (422 for another body). None when the
    key that won is not believed: the request is then to be written without it."""
    lookup = idempotency_key_lookup(actor=actor, scope=scope, key=key, payload_sha256=payload_sha256)
    if lookup.replay is None and lookup.key is not None:  # pragma: no cover - the winner committed, so it exists
        raise IdempotencyKeyInFlight()
    return lookup.replay


def idempotency_key_claim(*, actor: str, scope: str, key: str, payload_sha256: str, body: Answer) -> bool:
    """Claim the key in the current transaction; False if another request holds it.

    ON CONFLICT DO NOTHING waits for a concurrent uncommitted claim of the same key and then
    sees it committed (False) or rolled back (we claim it). The wait is bounded by the
    connection's lock_timeout, which surfaces as 409 (still in flight).
    """
    answer_hmac = _answer_hmac(
        secret=settings.SECRET_KEY, scope=scope, actor=actor, key=key, request_sha256=payload_sha256, answer=body
    )
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {IdempotencyKey._meta.db_table}"  # noqa: S608 - a constant table name
            # kind: the scope's column
            " (actor, kind, key, request_sha256, response_body, answer_hmac, created_at)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s)"
            " ON CONFLICT (actor, kind, key) DO NOTHING RETURNING id",
            [actor, scope, key, payload_sha256, fingerprint_json(body).decode(), answer_hmac, timezone.now()],
        )
        return cursor.fetchone() is not None


def _believed(claimed: IdempotencyKey) -> bool:
    """Whether the key row was written by the service: its HMAC verifies under SECRET_KEY (or
    a key it replaced, SECRET_KEY_FALLBACKS). Counted and logged when not."""
    for secret in (settings.SECRET_KEY, *settings.SECRET_KEY_FALLBACKS):
        expected = _answer_hmac(
            secret=secret,
            scope=claimed.scope,
            actor=claimed.actor,
            key=claimed.key,
            request_sha256=claimed.request_sha256,
            answer=claimed.response_body,
        )
        if constant_time_compare(claimed.answer_hmac, expected):
            return True
    IDEMPOTENCY_KEY_ANOMALIES.inc()
    logger.warning(
        "idempotency key %s of %s is not bound to an answer of this service; writing without it",
        claimed.id,
        claimed.actor,
    )
    return False


def _answer_hmac(*, secret: str, scope: str, actor: str, key: str, request_sha256: str, answer: Any) -> str:
    message = fingerprint_json([scope, actor, key, request_sha256, answer])
    return salted_hmac(_HMAC_SALT, message, secret=secret, algorithm="sha256").hexdigest()
