"""Batch bodies and the POST of them, for the batch endpoint's tests."""

from __future__ import annotations

import json
from typing import Any

from django.test import Client

from audit.models import AuditKind
from testutils.factories import VALID_BODIES

BATCH_ENDPOINT = "/api/v1/audit/batch"

#: A mixed batch: every kind, some twice, not grouped by kind.
MIXED_KINDS = [
    AuditKind.WORKFLOW,
    AuditKind.REMEDIATION,
    AuditKind.EXECUTION,
    AuditKind.AI_ANALYSIS,
    AuditKind.REMEDIATION,
    AuditKind.WORKFLOW,
    AuditKind.EXECUTION,
]


def batch_of(kinds: list[AuditKind], **overrides: Any) -> dict[str, Any]:
    """A batch body: one fresh valid record per entry of `kinds`."""
    return {"records": [{"kind": kind.value, "record": VALID_BODIES[kind](**overrides)} for kind in kinds]}


def post_batch(client: Client, body: Any, **headers: str) -> Any:
    return client.post(
        BATCH_ENDPOINT,
        data=json.dumps(body, ensure_ascii=False),
        content_type="application/json",
        headers=headers,
    )
