"""The rows `python -m bench volume` stores: whole remediation chains, as the write path stores them.

A chain is what one incident leaves in the audit trail: a remediation, its AI analysis, its
workflow and two Kubernetes executions, all under one correlation id and naming each other
(`remediationRequestRef`, `aiAnalysisRef`, `workflowExecutionRef`), each with its embedding;
and, when the `audit_events` table exists, two upstream-shaped events of the same incident
(the gateway receiving the signal, the workflow execution completing).

Bodies come from a pool of templates made by the cache replay's generator
(bench/embedding_cache_replay.py: realistic free text, labels, step lists) and validated once
by the API's own serializers; each row then gets its own name, correlation id, references and
timestamps. The columns are filled the way the write path fills them: a column named like a
validated field takes its value, any other the model's default, the body as received goes in
`payload`, and `content_sha256` is the write path's fingerprint of (payload, recorded_at,
actor), byte for byte (`record_content_sha256`; a test checks it against a record written
through the API). Embedding rows carry the write path's denormalised columns and the SHA-256
of the record's semantic text (the same for every row of a template, as the text normalises
names away); their vectors are distinct unit vectors near one of a few hundred topic centres
(bench/prefill.py), not the model's output, which only the index build and searches look at.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import random
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import orjson

from bench.embedding_cache_replay import APPS, body_for, incidents
from bench.prefill import clustered_vectors, topic_centres

#: record kind → (seconds after the chain starts, the controller that writes it)
CHAIN: tuple[tuple[str, int, str], ...] = (
    ("remediation", 0, "gateway"),
    ("aianalysis", 20, "aianalysis-controller"),
    ("workflow", 40, "workflowexecution-controller"),
    ("execution", 60, "kubernetes-executor"),
    ("execution", 61, "kubernetes-executor"),
)
#: event type → seconds after the chain starts
CHAIN_EVENTS: tuple[tuple[str, int], ...] = (
    ("gateway.signal.received", -2),
    ("workflowexecution.workflow.completed", 62),
)
EVENTS_ACTOR = "system:serviceaccount:kubernaut-system:gateway"
EMBEDDING_MODELS = {384: "all-MiniLM-L6-v2", 1536: "text-embedding-3-small"}
#: Distinct bodies per kind: enough variety in text, labels and sizes, few enough to validate.
TEMPLATES_PER_KIND = 200
EMBEDDINGS_TABLE = "incident_embeddings"
EVENTS_TABLE = "audit_events"


def record_content_sha256(*, payload: Mapping[str, Any], recorded_at: dt.datetime, actor: str) -> str:
    """The write path's `content_sha256`: SHA-256 of the canonical JSON (sorted keys, compact)
    of the body as received, when (Python's isoformat of recorded_at) and by whom."""
    document = {"payload": payload, "recordedAt": recorded_at.isoformat(), "actor": actor}
    return hashlib.sha256(orjson.dumps(document, option=orjson.OPT_SORT_KEYS)).hexdigest()


def rfc3339(moment: dt.datetime) -> str:
    """A whole-second UTC datetime as controllers send it (isoformat: several times faster
    than strftime, which counts over millions of rows)."""
    return moment.isoformat()[:19] + "Z"


@dataclass(frozen=True, slots=True)
class Template:
    """One validated body of a kind: the body as sent, the columns it gives, its text's hash."""

    payload: dict[str, Any]
    columns: dict[str, Any]
    input_sha256: str


@dataclass(frozen=True, slots=True)
class TableColumns:
    table: str
    #: (column, PostgreSQL type name) in COPY order
    columns: tuple[tuple[str, str], ...]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.columns)

    @property
    def types(self) -> list[str]:
        return [kind for _, kind in self.columns]


def templates_make(*, seed: int) -> dict[str, list[Template]]:
    """TEMPLATES_PER_KIND validated bodies of each audit kind."""
    from audit.api.serializers import audit_validated
    from audit.models import AuditKind
    from audit.write.texts import audit_text
    from embeddings.services import text_sha256

    rng = random.Random(seed)
    catalogue = incidents(TEMPLATES_PER_KIND, rng)
    made: dict[str, list[Template]] = {}
    for kind in AuditKind:
        made[kind.value] = []
        for incident in catalogue:
            body = body_for(kind, incident, rng)
            data = audit_validated(kind=kind, data=body)
            made[kind.value].append(Template(body, data, text_sha256(audit_text(kind=kind, data=data))))
    return made


def event_templates_make() -> list[dict[str, Any]]:
    """One valid upstream event body per type of CHAIN_EVENTS, every optional field set."""
    from audit.api.events.serializers import audit_event_validated
    from testutils.events import event_body_full

    bodies = []
    for event_type, _ in CHAIN_EVENTS:
        body = event_body_full(event_type)
        audit_event_validated(data=body, now=dt.datetime.now(dt.UTC))
        bodies.append(body)
    return bodies


class ChainRows:
    """Row tuples for COPY, chain by chain; ids are given by the caller (the fill reserves them)."""

    def __init__(self, *, columns: Mapping[str, TableColumns], dimensions: int, events: bool, seed: int = 5) -> None:
        from audit.models import AUDIT_MODELS, AuditKind

        self.columns = columns
        self.dimensions = dimensions
        self.model = EMBEDDING_MODELS.get(dimensions, f"bench-{dimensions}d")
        self.events = events
        self.templates = templates_make(seed=seed)
        self.event_templates = event_templates_make() if events else []
        self.defaults = {
            kind.value: {
                field.column: field.get_default()
                for field in AUDIT_MODELS[kind]._meta.concrete_fields
                if not field.primary_key
            }
            for kind in AuditKind
        }
        self.names = {table: table_columns.names for table, table_columns in columns.items()}
        self.rng = np.random.default_rng(seed)
        self.centres = topic_centres(self.rng, dimensions)
        self.pick = random.Random(seed)

    def rows_per_chain(self) -> int:
        return 2 * len(CHAIN) + (len(CHAIN_EVENTS) if self.events else 0)

    def block(
        self, *, first_chain: int, starts: list[dt.datetime], next_ids: dict[str, int]
    ) -> dict[str, list[tuple[Any, ...]]]:
        """The rows of the chains starting at `starts` (numbered from `first_chain`), per table,
        each table's rows in recorded_at order with ids from `next_ids` (advanced in place)."""
        pending: dict[str, list[tuple[dt.datetime, int, Any]]] = {}
        for offset, start in enumerate(starts):
            chain = first_chain + offset
            # One incident per chain: the same template number in every kind.
            template = self.pick.randrange(TEMPLATES_PER_KIND)
            for position, (kind, after, controller) in enumerate(CHAIN):
                recorded_at = start + dt.timedelta(seconds=after)
                what = (kind, position, controller, template)
                pending.setdefault(f"audit_{kind}", []).append((recorded_at, chain, what))
            for position, (event_type, after) in enumerate(CHAIN_EVENTS if self.events else ()):
                recorded_at = start + dt.timedelta(seconds=after)
                pending.setdefault(EVENTS_TABLE, []).append((recorded_at, chain, (event_type, position)))
        rows: dict[str, list[tuple[Any, ...]]] = {EMBEDDINGS_TABLE: []}
        embedded: list[tuple[dt.datetime, str, int, dict[str, Any], str]] = []
        for table, entries in pending.items():
            entries.sort(key=lambda entry: entry[0])
            out = rows[table] = []
            for recorded_at, chain, what in entries:
                row_id = next_ids[table]
                next_ids[table] += 1
                if table == EVENTS_TABLE:
                    out.append(self._event(row_id, recorded_at, chain, *what))
                    continue
                row, data, input_sha256 = self._record(row_id, recorded_at, chain, *what)
                out.append(row)
                embedded.append((recorded_at, what[0], row_id, data, input_sha256))
        embedded.sort(key=lambda entry: entry[0])
        vectors = clustered_vectors(self.rng, self.centres, len(embedded))
        for (recorded_at, kind, audit_id, data, input_sha256), vector in zip(embedded, vectors, strict=True):
            row_id = next_ids[EMBEDDINGS_TABLE]
            next_ids[EMBEDDINGS_TABLE] += 1
            rows[EMBEDDINGS_TABLE].append(
                self._embedding(row_id, recorded_at, kind, audit_id, data, input_sha256, vector)
            )
        return rows

    def _record(
        self, row_id: int, recorded_at: dt.datetime, chain: int, kind: str, position: int, controller: str, number: int
    ) -> tuple[tuple[Any, ...], dict[str, Any], str]:
        template = self.templates[kind][number]
        created = recorded_at.replace(microsecond=0) - dt.timedelta(seconds=95)
        started, completed = created + dt.timedelta(seconds=2), created + dt.timedelta(seconds=90)
        names = chain_names(chain)
        name = names[kind] if kind != "execution" else f"{names['execution']}-{position - 2}"
        changed: dict[str, Any] = {
            "name": name,
            "correlation_id": names["correlation"],
            "created_at": created,
            "started_at": started,
            "completed_at": completed,
        }
        if kind in ("aianalysis", "workflow"):
            changed["remediation_request_ref"] = names["remediation"]
        if kind == "workflow":
            changed["ai_analysis_ref"] = names["aianalysis"]
        if kind == "execution":
            changed["workflow_execution_ref"] = names["workflow"]
        payload = dict(template.payload)
        for column, value in changed.items():
            payload[_CAMEL[column]] = rfc3339(value) if isinstance(value, dt.datetime) else value
        actor = f"system:serviceaccount:kubernaut-system:{controller}"
        data = {**template.columns, **changed}
        given = {
            **data,
            "recorded_at": recorded_at,
            "actor": actor,
            "request_id": f"req-{chain:010x}-{position}",
            "content_sha256": record_content_sha256(payload=payload, recorded_at=recorded_at, actor=actor),
            "payload": payload,
        }
        defaults = self.defaults[kind]
        row = tuple(
            row_id if column == "id" else given[column] if column in given else defaults[column]
            for column in self.names[f"audit_{kind}"]
        )
        return row, data, template.input_sha256

    def _embedding(
        self,
        row_id: int,
        recorded_at: dt.datetime,
        kind: str,
        audit_id: int,
        data: Mapping[str, Any],
        input_sha256: str,
        vector: npt.NDArray[np.float32],
    ) -> tuple[Any, ...]:
        values = {
            "id": row_id,
            "audit_type": kind,
            "audit_id": audit_id,
            "audit_recorded_at": recorded_at,
            "remediation_request_id": data["name"]
            if kind == "remediation"
            else data.get("remediation_request_ref", ""),
            "namespace": data["namespace"],
            "target_type": data.get("target_type", ""),
            "target_name": data.get("target_name", ""),
            "signal_type": data.get("signal_type", ""),
            "root_cause": data.get("root_cause", ""),
            "model": self.model,
            "dimensions": self.dimensions,
            "input_sha256": input_sha256,
            "embedding": vector,
            "recorded_at": recorded_at,
        }
        return tuple(values[column] for column in self.names[EMBEDDINGS_TABLE])

    def _event(
        self, row_id: int, recorded_at: dt.datetime, chain: int, event_type: str, position: int
    ) -> tuple[Any, ...]:
        body = dict(self.event_templates[position])
        happened = recorded_at.replace(microsecond=0) - dt.timedelta(seconds=1)
        body.update(correlation_id=chain_names(chain)["correlation"], event_timestamp=rfc3339(happened))
        values = {
            **body,
            "id": row_id,
            "event_id": uuid.UUID(int=self.pick.getrandbits(128), version=4),
            "recorded_at": recorded_at,
            "event_timestamp": happened,
            "parent_event_id": None,
            "parent_event_date": None,
            "extra_fields": None,
            "actor": EVENTS_ACTOR,
            "request_id": f"req-{chain:010x}-e{position}",
            "content_sha256": record_content_sha256(payload=body, recorded_at=recorded_at, actor=EVENTS_ACTOR),
        }
        return tuple(values.get(column) for column in self.names[EVENTS_TABLE])


def chain_names(chain: int) -> dict[str, str]:
    """The names of one chain's records, unique per chain, as controllers name them."""
    app, suffix = APPS[chain % len(APPS)], f"{chain:07x}"
    return {
        "remediation": f"rr-{app}-{suffix}",
        "aianalysis": f"ai-{app}-{suffix}",
        "workflow": f"wf-{app}-{suffix}",
        "execution": f"ke-{app}-{suffix}",
        "correlation": f"corr-{chain:012x}",
    }


_CAMEL = {
    "name": "name",
    "correlation_id": "correlationId",
    "created_at": "createdAt",
    "started_at": "startedAt",
    "completed_at": "completedAt",
    "remediation_request_ref": "remediationRequestRef",
    "ai_analysis_ref": "aiAnalysisRef",
    "workflow_execution_ref": "workflowExecutionRef",
}


def chain_starts(*, first: int, count: int, start: dt.datetime, step: dt.timedelta) -> Iterator[dt.datetime]:
    for chain in range(first, first + count):
        yield start + step * chain
