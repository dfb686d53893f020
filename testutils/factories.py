"""Valid audit bodies, one per kind, as controllers send them (camelCase JSON)."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from audit.models import AuditKind


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


def rfc3339(moment: dt.datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def common_fields(**overrides: Any) -> dict[str, Any]:
    created = _now() - dt.timedelta(minutes=2)
    body = {
        "name": "rr-payments-oom-7f3c",
        "namespace": "payments",
        "phase": "Completed",
        "message": "Remediation finished.\nAll steps succeeded.",
        "createdAt": rfc3339(created),
        "startedAt": rfc3339(created + dt.timedelta(seconds=5)),
        "completedAt": rfc3339(created + dt.timedelta(seconds=65)),
        "correlationId": f"corr-{uuid.uuid4().hex[:12]}",
        "labels": {"app.kubernetes.io/name": "payments-api", "team": "checkout"},
    }
    body.update(overrides)
    return body


def remediation_body(**overrides: Any) -> dict[str, Any]:
    body = common_fields(
        signalType="prometheus",
        signalName="KubePodOOMKilled",
        signalNamespace="payments",
        targetType="deployment",
        targetName="payments-api",
        targetNamespace="payments",
        environment="production",
        priority="P1",
        fingerprint="a" * 64,
        reason="Container exceeded its memory limit",
        originalPayload="eyJhbGVydCI6ICJPT00ifQ==",
    )
    body.update(overrides)
    return body


def aianalysis_body(**overrides: Any) -> dict[str, Any]:
    body = common_fields(
        name="ai-payments-oom-7f3c",
        remediationRequestRef="rr-payments-oom-7f3c",
        signalType="prometheus",
        signalContext={"alert": {"severity": "critical", "value": 1.5}, "pods": ["a", "b"]},
        llmProvider="openai",
        llmModel="gpt-4o",
        temperature=0.2,
        rootCause="Memory leak in the payment cache grows until the OOM killer fires.",
        confidence=0.87,
        recommendedAction="increase_memory_limit",
        requiresApproval=False,
        investigationId="inv-42",
        tokensUsed=1834,
        investigationTimeSeconds=12.5,
    )
    body.update(overrides)
    return body


def workflow_body(**overrides: Any) -> dict[str, Any]:
    created = _now() - dt.timedelta(minutes=2)
    body = common_fields(
        name="wf-payments-oom-7f3c",
        remediationRequestRef="rr-payments-oom-7f3c",
        aiAnalysisRef="ai-payments-oom-7f3c",
        workflowName="oom-recovery",
        isAutoApproved=True,
        requiresApproval=False,
        stepCount=3,
        currentStep=3,
        completedCount=2,
        failedCount=0,
        skippedCount=1,
        stepStatuses=[
            {
                "name": "increase-memory",
                "phase": "Completed",
                "startedAt": rfc3339(created + dt.timedelta(seconds=6)),
                "completedAt": rfc3339(created + dt.timedelta(seconds=20)),
                "retryCount": 0,
                "message": "limit 512Mi -> 1Gi",
            },
            {"name": "rollout-restart", "phase": "Completed", "retryCount": 1},
            {"name": "notify", "phase": "Pending"},
        ],
    )
    body.update(overrides)
    return body


def execution_body(**overrides: Any) -> dict[str, Any]:
    body = common_fields(
        name="ke-payments-oom-7f3c-1",
        workflowExecutionRef="wf-payments-oom-7f3c",
        stepName="increase-memory",
        actionType="increase_memory_limit",
        actionData={"container": "api", "memory": "1Gi"},
        targetType="deployment",
        targetName="payments-api",
        targetNamespace="payments",
        enableDryRun=True,
        enableValidation=True,
        enableRollback=True,
        actionResult="patched",
        resourceVersion="123457",
        previousVersion="123456",
        dryRunResult="would patch 1 container",
        validationResult="ok",
        validationWarnings=["memory request below limit"],
        isRolledBack=False,
    )
    body.update(overrides)
    return body


VALID_BODIES = {
    AuditKind.REMEDIATION: remediation_body,
    AuditKind.AI_ANALYSIS: aianalysis_body,
    AuditKind.WORKFLOW: workflow_body,
    AuditKind.EXECUTION: execution_body,
}


def endpoint(kind: AuditKind) -> str:
    return f"/api/v1/audit/{kind.value}"
