"""Audit rows for the admin and operator tests: through the real write path, or in bulk by SQL."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from django.db import connection
from psycopg import sql

from audit.api.serializers import AUDIT_SERIALIZERS
from audit.models import AUDIT_MODELS, AuditKind, AuditRecord
from audit.write.single import audit_record_create
from testutils.factories import aianalysis_body, execution_body, remediation_body, workflow_body


def write(kind: AuditKind, body: dict[str, Any]) -> AuditRecord:
    """One record through the real write path (validation, local embedding, one transaction)."""
    serializer = AUDIT_SERIALIZERS[kind](data=body)
    serializer.is_valid(raise_exception=True)
    created = audit_record_create(
        kind=kind, data=serializer.validated_data, payload=body, actor="system:serviceaccount:test", request_id="req"
    )
    return AUDIT_MODELS[kind]._default_manager.get(id=created.body["id"])


def remediation_chain(*, correlation_id: str | None = None, suffix: str | None = None) -> dict[str, Any]:
    """A remediation followed through its AI analysis, workflow and two executions.

    All five share one correlation id and refer to each other by name, as the controllers do.
    """
    correlation_id = correlation_id or f"corr-{uuid.uuid4().hex[:12]}"
    suffix = suffix or uuid.uuid4().hex[:6]
    rr, ai, wf = f"rr-payments-oom-{suffix}", f"ai-payments-oom-{suffix}", f"wf-payments-oom-{suffix}"
    common = {"correlationId": correlation_id}
    return {
        "correlation_id": correlation_id,
        "remediation": write(AuditKind.REMEDIATION, remediation_body(name=rr, **common)),
        "aianalysis": write(AuditKind.AI_ANALYSIS, aianalysis_body(name=ai, remediationRequestRef=rr, **common)),
        "workflow": write(
            AuditKind.WORKFLOW, workflow_body(name=wf, remediationRequestRef=rr, aiAnalysisRef=ai, **common)
        ),
        "executions": [
            write(AuditKind.EXECUTION, execution_body(name=f"ke-{suffix}-{step}", workflowExecutionRef=wf, **common))
            for step in (1, 2)
        ],
    }


def bulk_remediations(
    *, count: int, recorded_from: dt.datetime, recorded_to: dt.datetime, prefix: str = "bulk"
) -> None:
    """`count` remediation rows spread evenly over [recorded_from, recorded_to), in one INSERT.

    Server-side generate_series: no per-row round trip, so thousands of rows cost milliseconds.
    """
    statement = sql.SQL(
        "INSERT INTO audit_remediation (recorded_at, name, namespace, phase, message, created_at,"
        " correlation_id, labels, actor, request_id, content_sha256, payload, signal_type, signal_name,"
        " signal_namespace, target_type, target_name, target_namespace, environment, priority, fingerprint)"
        " SELECT t, {prefix} || '-' || n, 'ns-' || mod(n, 7),"
        "  (ARRAY['Pending', 'Processing', 'Completed', 'Failed'])[1 + mod(n, 4)],"
        "  '', t, {prefix} || '-corr-' || n, '{{}}', 'bulk', 'req', md5(n::text) || md5(n::text), '{{}}',"
        "  'prometheus', 'KubePodOOMKilled', 'ns', 'deployment', 'web', 'ns', 'production', 'P2', ''"
        " FROM generate_series(1, %(count)s) AS n,"
        "  LATERAL (SELECT %(start)s::timestamptz + (n - 1) * (%(span)s::interval / %(count)s)) AS at(t)"
    ).format(prefix=sql.Literal(prefix))
    with connection.cursor() as cursor:
        cursor.execute(
            statement.as_string(cursor.cursor.connection),
            {"count": count, "start": recorded_from, "span": f"{(recorded_to - recorded_from).total_seconds()} s"},
        )
