"""The write path of upstream Kubernaut's audit events: one event, or a batch all or nothing.

    validated events ─► their ids (UUIDv7, made here, in input order)
                     ─► one transaction (audit/write/commit.py): one INSERT of every row, then
                        the Idempotency-Key (the caller's, or one made from the body)

The ids are known before the INSERT: the answer names them in the order sent whatever order
the database returns rows in, and a retried statement stores the same ids. Events never wait
for an embedding model: with AUDIT_EVENTS_EMBEDDING=deferred the same statement queues each in
the embedding backlog, and `embeddings_backfill` embeds `event_text` of it later.

A retry is not a second batch. Upstream's client sends no Idempotency-Key; it gives up on an
answer after 10 s and posts the same bytes again. So a body without a key gets a key of its
own: its SHA-256 and the AUDIT_EVENTS_DEDUPE_SECONDS bucket of the receive time, in the
`events-body` scope. A byte-identical body from the same caller in the same or the next bucket
(at least the window, at most twice it, after the first) is answered with the first answer,
and stored once; a concurrent twin waits on the key's row and then replays it. The trade-off:
two genuinely separate posts of the same bytes within the window are stored once; their events
carry the same timestamps and correlation ids, so nothing tells them from a retry.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import uuid
from collections.abc import Sequence
from typing import Any

import orjson
from django.conf import settings
from django.db import connection

from audit.api.events.serializers import ValidatedEvent
from audit.event_ids import event_id_new
from audit.models import EVENT_AUDIT_TYPE, EVENTS_BATCH_SCOPE, EVENTS_BODY_SCOPE, EVENTS_SCOPE, AuditEvent
from audit.write.commit import AuditWrite, PreparedWrite, audit_write_commit
from audit.write.idempotency import idempotency_key_lookup, request_sha256
from audit.write.statements import AuditStatement
from embeddings.models import EmbeddingBacklog

#: The document's fields, stored in the columns of the same names.
_DOCUMENT_COLUMNS = (
    "version",
    "event_type",
    "event_timestamp",
    "event_category",
    "event_action",
    "event_outcome",
    "actor_type",
    "actor_id",
    "actor_ip",
    "resource_type",
    "resource_id",
    "correlation_id",
    "parent_event_id",
    "namespace",
    "cluster_id",
    "severity",
    "duration_ms",
    "parent_event_date",
    "error_code",
    "error_message",
    "retention_days",
    "is_sensitive",
)


def event_content_sha256(*, event: ValidatedEvent, event_id: uuid.UUID, recorded_at: dt.datetime, actor: str) -> str:
    """The write-time fingerprint of one stored event (`content_sha256`): the event as received
    (its fields, its payload's and unknown keys' JSON as stored), its id, when and by whom."""
    document = {
        "event_id": str(event_id),
        "recorded_at": recorded_at.isoformat(),
        "actor": actor,
        "columns": event.columns,
        "event_data": orjson.Fragment(event.event_data.json),
        "extra_fields": orjson.Fragment(event.extra_fields_json) if event.extra_fields_json is not None else None,
    }
    return hashlib.sha256(orjson.dumps(document, option=orjson.OPT_SORT_KEYS)).hexdigest()


def audit_events_create(
    *,
    events: Sequence[ValidatedEvent],
    single: bool,
    recorded_at: dt.datetime,
    actor: str,
    request_id: str,
    body_sha256: str,
    idempotency_key: str | None,
    dedupe_seconds: int,
) -> AuditWrite:
    """Store every event or none; the 201 body of `POST /api/v1/audit/events` (`single`) or of
    `/events/batch`, ids in input order.

    `recorded_at`: the request's receive time, against which the events were validated.
    `body_sha256`: the hash of the body as received: what an Idempotency-Key keeps, and the
    body's own key when the caller sent none (`dedupe_seconds` > 0).
    """
    payload = {"body_sha256": body_sha256}
    scope = EVENTS_SCOPE if single else EVENTS_BATCH_SCOPE
    if idempotency_key is None and dedupe_seconds > 0:
        scope = EVENTS_BODY_SCOPE
        endpoint = "single" if single else "batch"
        bucket = int(recorded_at.timestamp()) // dedupe_seconds
        earlier = idempotency_key_lookup(
            actor=actor,
            scope=scope,
            key=f"{endpoint}:{body_sha256}:{bucket - 1}",
            payload_sha256=request_sha256(payload),
        )
        if earlier.replay is not None:
            return AuditWrite(body=earlier.replay, replayed=True)
        idempotency_key = f"{endpoint}:{body_sha256}:{bucket}"

    def prepare() -> PreparedWrite:
        event_ids = [event_id_new() for _ in events]
        deferred = settings.AUDIT_EVENTS_EMBEDDING == "deferred"
        statement = events_insert_statement(
            events=events,
            event_ids=event_ids,
            recorded_at=recorded_at,
            actor=actor,
            request_id=request_id,
            deferred=deferred,
        )
        body = _single_body(events[0], event_ids[0]) if single else _batch_body(event_ids)
        return PreparedWrite(
            statements=[statement],
            recorded_at=recorded_at,
            correlation_ids=[event.columns["correlation_id"] for event in events],
            answer=lambda _results: body,
            deferred=len(events) if deferred else 0,
        )

    return audit_write_commit(
        scope=scope, actor=actor, idempotency_key=idempotency_key, payload=payload, prepare=prepare
    )


def events_insert_statement(
    *,
    events: Sequence[ValidatedEvent],
    event_ids: Sequence[uuid.UUID],
    recorded_at: dt.datetime,
    actor: str,
    request_id: str,
    deferred: bool = False,
) -> AuditStatement:
    """One INSERT of every event, its rows sent as arrays (`unnest`): the same text whatever the
    batch size, so it is prepared once per connection, and 1000 events are 27 parameters, not
    the 27,000 a VALUES list would bind. `deferred`: each event's embedding backlog row too."""
    arrays: list[list[Any]] = [list(event_ids)]
    for column in _DOCUMENT_COLUMNS:
        arrays.append([event.columns[column] for event in events])
    arrays.append([event.event_data.json.decode() for event in events])
    arrays.append([_text(event.extra_fields_json) for event in events])
    arrays.append(
        [
            event_content_sha256(event=event, event_id=event_id, recorded_at=recorded_at, actor=actor)
            for event, event_id in zip(events, event_ids, strict=True)
        ]
    )
    # An array of NULLs only is sent as NULL: unnest pads it to the rows' count with NULLs, and
    # the driver need not guess the element type of a list that holds no value.
    params = [recorded_at, actor, request_id]
    params += [None if all(value is None for value in array) else array for array in arrays]
    if deferred:
        params.append(recorded_at)  # the backlog rows' created_at
    return AuditStatement(sql=_events_insert_sql(deferred), params=tuple(params), indexes=tuple(range(len(events))))


def _text(value: bytes | None) -> str | None:
    return value.decode() if value is not None else None


def _quote(name: str) -> str:
    return connection.ops.quote_name(name)


#: Why an event's embedding waits, as its backlog row says.
_DEFERRAL_REASON = "audit events are embedded by embeddings_backfill, never while written"


@functools.cache
def _events_insert_sql(deferred: bool) -> str:
    fields = {field.column: field for field in AuditEvent._meta.concrete_fields}
    typed = [("event_id", "uuid")]
    typed += [(column, fields[column].db_type(connection) or "text") for column in _DOCUMENT_COLUMNS]
    typed += [("event_data", "text"), ("extra_fields", "text"), ("content_sha256", "text")]
    arrays = ", ".join(f"%s::{db_type}[]" for _, db_type in typed)
    names = ", ".join(f"u_{column}" for column, _ in typed)
    stored = ["event_id", *_DOCUMENT_COLUMNS, "event_data", "extra_fields", "content_sha256"]
    values = [f"u_{column}" for column in stored[:-3]]
    values += ["u_event_data::jsonb", "u_extra_fields::jsonb", "u_content_sha256"]
    insert = (
        f"INSERT INTO {_quote(AuditEvent._meta.db_table)}"  # noqa: S608 - our model's names only
        f" (recorded_at, actor, request_id, {', '.join(_quote(column) for column in stored)})"
        f" SELECT %s, %s, %s, {', '.join(values)}"
        f" FROM unnest({arrays}) WITH ORDINALITY AS u({names}, ord) ORDER BY ord"
    )
    if not deferred:
        return f"{insert} RETURNING id, NULL::bigint"
    return (
        f"WITH audit AS ({insert} RETURNING id, recorded_at), backlog AS ("  # noqa: S608
        f"INSERT INTO {_quote(EmbeddingBacklog._meta.db_table)}"
        " (audit_type, audit_id, audit_recorded_at, reason, created_at)"
        f" SELECT '{EVENT_AUDIT_TYPE}', id, recorded_at, '{_DEFERRAL_REASON}', %s FROM audit"
        ") SELECT id, NULL::bigint FROM audit"
    )


#: Payload keys that name what an event is about, beside those ending in _name or _id.
_IDENTIFYING_KEYS = frozenset({"fingerprint", "phase", "signal", "action_type", "model", "tool_name", "decision"})
#: Each identifying value in the text at most this long: the text is for similarity, not storage.
_TEXT_VALUE_CHARS = 200


def event_text(event: AuditEvent) -> str:
    """The deterministic text an audit event is embedded from: its type and outcome, resource
    and namespace, then the payload's identifying string fields in key order."""
    parts = [
        event.event_type,
        event.event_outcome,
        f"{event.resource_type or ''}/{event.resource_id or ''}",
        f"ns={event.namespace or ''}",
    ]
    payload = event.event_data if isinstance(event.event_data, dict) else {}
    for key in sorted(payload):
        value = payload[key]
        if key == "event_type" or not isinstance(value, str):
            continue
        if key in _IDENTIFYING_KEYS or key.endswith(("_name", "_id")):
            parts.append(f"{key}={value[:_TEXT_VALUE_CHARS]}")
    return " ".join(parts)


def event_embedding_seed(event: AuditEvent) -> dict[str, str]:
    """The denormalised columns `incident_embeddings` carries for an event (within their widths)."""
    payload = event.event_data if isinstance(event.event_data, dict) else {}
    signal = payload.get("signal_type")
    return {
        "remediation_request_id": event.correlation_id[:253],
        "namespace": (event.namespace or "")[:63],
        "target_type": (event.resource_type or "")[:32],
        "target_name": (event.resource_id or "")[:253],
        "signal_type": signal[:32] if isinstance(signal, str) else "",
        "root_cause": "",
    }


def _timestamp(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def _single_body(event: ValidatedEvent, event_id: uuid.UUID) -> dict[str, Any]:
    return {
        "event_id": str(event_id),
        "event_timestamp": _timestamp(event.columns["event_timestamp"]),
        "message": "Audit event created successfully",
    }


def _batch_body(event_ids: Sequence[uuid.UUID]) -> dict[str, Any]:
    return {
        "event_ids": [str(event_id) for event_id in event_ids],
        "message": f"{len(event_ids)} audit events created successfully",
    }
