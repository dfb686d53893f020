"""Reads for auditors: a correlation id's timeline and a record's referenced records.

Every query here is answered by an index: `correlation_id` (the timeline; on audit_events
`(correlation_id, recorded_at)`) and `(namespace, name)` (the references); none grows with the
size of the tables.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.db import models
from django.db.models import CharField, F, TextField, Value
from django.db.models.functions import Coalesce, Concat

from audit.models import (
    AUDIT_MODELS,
    AIAnalysisAudit,
    AuditEvent,
    AuditKind,
    AuditRecord,
    ExecutionAudit,
    RemediationAudit,
    WorkflowAudit,
)

#: Records shown on one timeline. A correlation id normally spans a handful of records; a
#: runaway controller reusing one id must not make the page unbounded.
TIMELINE_LIMIT = 500
#: Records listed per reference (a name is written once per phase change).
RELATED_LIMIT = 5

_TIMELINE_COLUMNS = ("id", "recorded_at", "created_at", "name", "namespace", "phase", "message")


class TimelineEventKind(models.TextChoices):
    """The timeline's kind of an upstream audit event, beside the typed records' AuditKind."""

    EVENT = "event", "Audit event"


@dataclass(frozen=True, slots=True)
class TimelineEntry:
    """One row of a timeline. For an audit event: `name` is its event_type, `created_at` its
    event_timestamp, `phase` its action and outcome, `message` its error message."""

    kind: AuditKind | TimelineEventKind
    id: int
    recorded_at: dt.datetime
    created_at: dt.datetime
    name: str
    namespace: str
    phase: str
    message: str


@dataclass(frozen=True, slots=True)
class Timeline:
    correlation_id: str
    entries: list[TimelineEntry]
    #: True when there were more than TIMELINE_LIMIT records and only the first are shown.
    truncated: bool


def correlation_timeline(
    *, correlation_id: str, kinds: Iterable[AuditKind], events: bool = False, limit: int = TIMELINE_LIMIT
) -> Timeline:
    """Every record of `correlation_id` across `kinds` (and the audit events, with `events`),
    oldest first by receive time, then kind, then insertion sequence. One query (UNION ALL)."""
    kinds = list(kinds)
    if not kinds and not events:
        return Timeline(correlation_id=correlation_id, entries=[], truncated=False)
    parts: list[Any] = [
        AUDIT_MODELS[kind]
        ._default_manager.filter(correlation_id=correlation_id)
        .order_by()
        # The kind goes last: a union's columns must line up, and Django puts annotations
        # after the model's fields.
        .annotate(audit_kind=Value(kind.value, output_field=CharField()))
        .values_list(*_TIMELINE_COLUMNS, "audit_kind")
        for kind in kinds
    ]
    if events:
        parts.append(
            AuditEvent._default_manager.filter(correlation_id=correlation_id)
            .order_by()
            .annotate(
                t_name=F("event_type"),
                t_namespace=Coalesce("namespace", Value(""), output_field=TextField()),
                t_phase=Concat("event_action", Value(" / "), "event_outcome", output_field=TextField()),
                t_message=Coalesce("error_message", Value(""), output_field=TextField()),
                audit_kind=Value(TimelineEventKind.EVENT.value, output_field=CharField()),
            )
            .values_list(
                "id", "recorded_at", "event_timestamp", "t_name", "t_namespace", "t_phase", "t_message", "audit_kind"
            )
        )
    union = parts[0].union(*parts[1:], all=True) if len(parts) > 1 else parts[0]
    rows = list(union.order_by("recorded_at", "audit_kind", "id")[: limit + 1])
    entries = [
        TimelineEntry(
            kind=TimelineEventKind(row[7]) if row[7] == TimelineEventKind.EVENT else AuditKind(row[7]),
            id=row[0],
            recorded_at=row[1],
            created_at=row[2],
            name=row[3],
            namespace=row[4],
            phase=row[5],
            message=row[6],
        )
        for row in rows[:limit]
    ]
    return Timeline(correlation_id=correlation_id, entries=entries, truncated=len(rows) > limit)


@dataclass(frozen=True, slots=True)
class RelatedRecords:
    """The records a reference field names: `label` → the newest records of that name."""

    label: str
    kind: AuditKind
    namespace: str
    name: str
    records: list[AuditRecord]


def _references(record: AuditRecord) -> list[tuple[str, AuditKind, str]]:
    """(label, kind, name) of every record `record` refers to by name.

    Controllers create a record's AIAnalysis, WorkflowExecution and executions in the
    RemediationRequest's namespace, so a reference is looked up in the record's own namespace.
    """
    if isinstance(record, AIAnalysisAudit):
        return [("Remediation request", AuditKind.REMEDIATION, record.remediation_request_ref)]
    if isinstance(record, WorkflowAudit):
        references = [("Remediation request", AuditKind.REMEDIATION, record.remediation_request_ref)]
        if record.ai_analysis_ref:
            references.append(("AI analysis", AuditKind.AI_ANALYSIS, record.ai_analysis_ref))
        return references
    if isinstance(record, ExecutionAudit):
        return [("Workflow execution", AuditKind.WORKFLOW, record.workflow_execution_ref)]
    assert isinstance(record, RemediationAudit)
    return []


def related_records(*, record: AuditRecord, limit: int = RELATED_LIMIT) -> list[RelatedRecords]:
    """The records `record` references, newest first. One query per reference field."""
    related = []
    for label, kind, name in _references(record):
        records = list(
            AUDIT_MODELS[kind]
            ._default_manager.filter(namespace=record.namespace, name=name)
            .only("id", "recorded_at", "name", "namespace", "phase", "correlation_id")
            .order_by("-recorded_at")[:limit]
        )
        related.append(RelatedRecords(label=label, kind=kind, namespace=record.namespace, name=name, records=records))
    return related
