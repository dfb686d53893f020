"""Helpers that read the real tables, so tests assert on what PostgreSQL holds."""

from __future__ import annotations

import json
from typing import Any

from django.db import connection
from django.test import Client
from django.test.client import Client as DjangoClient

from audit.models import AUDIT_MODELS, AuditKind
from embeddings.models import EmbeddingBacklog, IncidentEmbedding
from testutils.factories import endpoint


def post_audit(client: Client | DjangoClient, kind: AuditKind, body: Any, **headers: str) -> Any:
    return client.post(
        endpoint(kind),
        data=json.dumps(body, ensure_ascii=False),
        content_type="application/json",
        headers=headers,
    )


def table_counts() -> dict[str, int]:
    """Row counts of every table a write touches."""
    counts = {kind.value: AUDIT_MODELS[kind]._default_manager.count() for kind in AuditKind}
    counts["embeddings"] = IncidentEmbedding.objects.count()
    counts["backlog"] = EmbeddingBacklog.objects.count()
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM audit_idempotency_keys")
        counts["idempotency_keys"] = cursor.fetchone()[0]
    return counts


def assert_problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.content[:500]
    assert response["Content-Type"] == "application/problem+json"
    problem: dict[str, Any] = response.json()
    assert problem["status"] == status
    assert {"type", "title", "detail", "instance"} <= problem.keys()
    return problem


def assert_rejected_without_writes(client: Any, kind: AuditKind, body: Any, status: int = 400) -> dict[str, Any]:
    """POST `body`, expect a problem+json `status`, and prove nothing was written."""
    before = table_counts()
    problem = assert_problem(post_audit(client, kind, body), status)
    assert table_counts() == before
    return problem


def error_fields(problem: dict[str, Any]) -> set[str]:
    return {error["field"] for error in problem["errors"]}
