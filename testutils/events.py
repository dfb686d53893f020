"""Valid upstream-shaped audit events, one for every event type, and batches of them.

Each payload holds what upstream's API document requires of its type's payload and nothing more,
so a test that adds or changes a field knows it is the only thing that differs. The event around
it is what upstream's Go client sends: version "1.0", a whole-second UTC timestamp.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import uuid
from collections.abc import Iterable
from typing import Any

from audit.api.events.serializers import (
    AUDIT_EVENTS_BATCH_MAX,
    EventsInvalid,
    audit_event_validated,
    audit_events_validated,
)
from audit.event_types import EVENT_TYPE_CATEGORY, EVENT_TYPE_LIST, EventCategory
from audit.models import AuditEvent

_WHEN = "2026-01-01T00:00:00Z"
_UUID = "00000000-0000-4000-8000-000000000001"

# Payload shapes shared by several types (upstream maps 142 types onto 94 payload schemas).
_GATEWAY_SIGNAL = {
    "signal_type": "alert",
    "signal_name": "KubePodCrashLooping",
    "namespace": "payments",
    "fingerprint": "5f1c0e9b7a0d",
}
_REMEDIATION = {"rr_name": "rr-payments-crashloop", "namespace": "payments"}
_SIGNAL_PROCESSING = {"phase": "Pending", "signal": "KubePodCrashLooping"}
_ANALYSIS = {
    "analysis_name": "aia-payments-crashloop",
    "namespace": "payments",
    "phase": "Pending",
    "approval_required": False,
    "degraded_mode": False,
    "warnings_count": 0,
}
_WORKFLOW_EXECUTION = {
    "workflow_id": "restart-deployment",
    "workflow_version": "1.2.0",
    "target_resource": "payments/deployment/payments-api",
    "phase": "Pending",
    "container_image": "quay.io/kubernaut/restart:1.2.0",
    "execution_name": "we-payments-crashloop",
}
_CATALOG_QUERY = {
    "query": {"top_k": 0},
    "results": {"total_found": 0, "returned": 0, "workflows": []},
    "search_metadata": {"duration_ms": 0},
}
_AGENT_CALL = {"endpoint": "/api/v1/incident/analyze", "http_status_code": 200, "duration_ms": 0}
_INCIDENT_RESPONSE = {
    "event_id": "evt-1",
    "incident_id": "inc-payments-1",
    "response_data": {
        "incidentId": "inc-payments-1",
        "analysis": "The container exits on start: a missing environment variable.",
        "rootCauseAnalysis": {"summary": "Missing DATABASE_URL", "severity": "critical", "contributingFactors": []},
        "confidence": 0.0,
        "timestamp": _WHEN,
    },
}
_AGENT_SESSION = {"event_id": "evt-1", "session_id": "sess-1"}
_AGENT_EVENT = {"event_id": "evt-1"}
_EFFECTIVENESS = {"correlation_id": "rr-payments-crashloop", "namespace": "payments"}
_ACTION_TYPE_ADMISSION = {
    "action_type_name": "RestartDeployment",
    "crd_name": "restart-deployment",
    "crd_namespace": "kubernaut-system",
}
_AGENT_SESSION_ADMISSION = {"crd_name": "session-1", "crd_namespace": "kubernaut-system"}
_DESCRIPTION = {"what": "Restarts a deployment", "when_to_use": "Pods are stuck"}
_FRONTEND_SESSION = {"session_id": "sess-1"}
_FRONTEND_TASK = {"session_id": "sess-1", "task_id": "task-1"}

#: For every event type, the payload fields its schema requires (besides `event_type`).
MINIMAL_EVENT_DATA: dict[str, dict[str, Any]] = {
    **dict.fromkeys(
        ["gateway.signal.received", "gateway.signal.deduplicated", "gateway.crd.created", "gateway.crd.failed"],
        _GATEWAY_SIGNAL,
    ),
    "gateway.config.reloaded": {"component": "gateway"},
    "gateway.config.rejected": {"component": "gateway", "rejection_reason": "unknown key"},
    **dict.fromkeys(
        [
            "orchestrator.lifecycle.started",
            "orchestrator.lifecycle.created",
            "orchestrator.lifecycle.completed",
            "orchestrator.lifecycle.failed",
            "orchestrator.lifecycle.verifying_started",
            "orchestrator.lifecycle.verification_completed",
            "orchestrator.lifecycle.verification_timed_out",
            "orchestrator.lifecycle.transitioned",
            "orchestrator.approval.requested",
            "orchestrator.approval.approved",
            "orchestrator.approval.rejected",
            "orchestrator.remediation.manual_review",
            "orchestrator.routing.blocked",
            "orchestrator.ea.created",
            "remediation.workflow_created",
        ],
        _REMEDIATION,
    ),
    "webhook.remediationrequest.timeout_modified": {**_REMEDIATION, "modified_by": "alice", "modified_at": _WHEN},
    "webhook.remediationapprovalrequest.decided": {
        "request_name": "rar-payments-crashloop",
        "decision": "Approved",
        "decided_at": _WHEN,
        "decision_message": "Looks right",
        "ai_analysis_ref": "aia-payments-crashloop",
    },
    **dict.fromkeys(
        [
            "signalprocessing.signal.processed",
            "signalprocessing.phase.transition",
            "signalprocessing.classification.decision",
            "signalprocessing.business.classified",
            "signalprocessing.enrichment.completed",
            "signalprocessing.error.occurred",
        ],
        _SIGNAL_PROCESSING,
    ),
    **dict.fromkeys(["aianalysis.analysis.completed", "aianalysis.analysis.failed"], _ANALYSIS),
    "aianalysis.phase.transition": {"old_phase": "Pending", "new_phase": "Investigating"},
    **dict.fromkeys(["aianalysis.aiagent.call", "aianalysis.aiagent.submit", "aianalysis.aiagent.result"], _AGENT_CALL),
    "aianalysis.approval.decision": {
        "approval_required": False,
        "approval_reason": "confidence above threshold",
        "auto_approved": False,
        "decision": "approved",
        "reason": "policy",
        "environment": "staging",
    },
    "aianalysis.rego.evaluation": {"outcome": "allow", "degraded": False, "duration_ms": 0, "reason": "policy"},
    "aianalysis.error.occurred": {"phase": "Investigating", "error_message": "agent unreachable"},
    **dict.fromkeys(
        [
            "workflowexecution.workflow.started",
            "workflowexecution.workflow.completed",
            "workflowexecution.workflow.failed",
            "workflowexecution.selection.completed",
            "workflowexecution.execution.started",
        ],
        _WORKFLOW_EXECUTION,
    ),
    "workflowexecution.block.cleared": {
        "workflow_name": "restart-deployment",
        "clear_reason": "operator cleared it",
        "cleared_at": _WHEN,
        "previous_state": "Blocked",
        "new_state": "Running",
    },
    "notification.message.sent": {
        "notification_id": "n-1",
        "channel": "slack",
        "subject": "Remediation done",
        "body": "payments-api restarted",
        "priority": "low",
        "type": "simple",
    },
    "notification.message.failed": {
        "notification_id": "n-1",
        "channel": "slack",
        "subject": "Remediation done",
        "body": "payments-api restarted",
        "priority": "low",
        "error_type": "timeout",
    },
    "notification.message.acknowledged": {"notification_id": "n-1", "subject": "Remediation done", "priority": "low"},
    "notification.message.escalated": {
        "notification_id": "n-1",
        "subject": "Remediation done",
        "priority": "low",
        "reason": "no acknowledgement",
    },
    "webhook.notification.cancelled": {},
    "webhook.notification.acknowledged": {},
    **dict.fromkeys(
        [
            "workflow.catalog.actions_listed",
            "workflow.catalog.workflows_listed",
            "workflow.catalog.workflow_retrieved",
            "workflow.catalog.selection_validated",
        ],
        _CATALOG_QUERY,
    ),
    "datastorage.workflow.created": {
        "workflow_id": _UUID,
        "workflow_name": "restart-deployment",
        "version": "1.2.0",
        "status": "Active",
        "is_latest_version": False,
        "execution_engine": "tekton",
        "name": "restart-deployment",
    },
    "datastorage.workflow.updated": {"workflow_id": _UUID, "updated_fields": {}},
    **{
        f"remediationworkflow.admitted.{action}": {"workflow_name": "restart-deployment", "action": action}
        for action in ("create", "update", "delete", "denied")
    },
    "authwebhook.workflow.registration_failed": {
        "workflow_name": "restart-deployment",
        "reason": "DependencyMissing",
        "message": "secret db-credentials not found",
    },
    "aiagent.response.complete": _INCIDENT_RESPONSE,
    "aiagent.rca.complete": _INCIDENT_RESPONSE,
    "aiagent.response.failed": {
        "event_id": "evt-1",
        "incident_id": "inc-payments-1",
        "error_message": "LLM timed out",
        "phase": "investigating",
    },
    "aiagent.enrichment.completed": {
        "event_id": "evt-1",
        "incident_id": "inc-payments-1",
        "root_owner_kind": "Deployment",
        "root_owner_name": "payments-api",
        "owner_chain_length": 0,
        "remediation_history_fetched": False,
    },
    "aiagent.enrichment.failed": {
        "event_id": "evt-1",
        "incident_id": "inc-payments-1",
        "reason": "not found",
        "detail": "deployment payments-api not found",
        "affected_resource_kind": "Deployment",
        "affected_resource_name": "payments-api",
    },
    "aiagent.llm.request": {
        "event_id": "evt-1",
        "incident_id": "inc-payments-1",
        "model": "gpt-4o",
        "prompt_length": 0,
        "prompt_preview": "Investigate",
    },
    "aiagent.llm.response": {
        "event_id": "evt-1",
        "incident_id": "inc-payments-1",
        "has_analysis": False,
        "analysis_length": 0,
        "analysis_preview": "No analysis yet",
    },
    "aiagent.llm.tool_call": {
        "event_id": "evt-1",
        "incident_id": "inc-payments-1",
        "tool_call_index": 0,
        "tool_name": "kubectl_get",
        "tool_result": "deployment/payments-api",
    },
    "aiagent.workflow.validation_attempt": {
        "event_id": "evt-1",
        "incident_id": "inc-payments-1",
        "attempt": 1,
        "max_attempts": 1,
        "is_valid": False,
    },
    **dict.fromkeys(
        [
            "aiagent.session.started",
            "aiagent.session.completed",
            "aiagent.session.failed",
            "aiagent.session.cancelled",
            "aiagent.session.suspended",
            "aiagent.session.resumed",
            "aiagent.interactive.started",
            "aiagent.interactive.completed",
            "aiagent.session.observed",
        ],
        _AGENT_SESSION,
    ),
    "aiagent.interactive.k8s_call": {**_AGENT_SESSION, "acting_user": "alice", "resource": "pods", "verb": "list"},
    "aiagent.secret.accessed": {**_AGENT_EVENT, "verb": "get"},
    "aiagent.session.access_denied": {**_AGENT_SESSION, "endpoint": "/sessions/sess-1", "requesting_user": "bob"},
    "aiagent.investigation.cancelled": {**_AGENT_EVENT, "cancelled_phase": "investigating", "cancelled_at_turn": 0},
    "aiagent.alignment.step": {**_AGENT_EVENT, "step_index": 0, "step_kind": "tool_call", "explanation": "read-only"},
    "aiagent.alignment.verdict": {**_AGENT_EVENT, "result": "aligned", "flagged": 0, "total": 0},
    "aiagent.shadow.llm.request": {
        **_AGENT_EVENT,
        "incident_id": "inc-payments-1",
        "step_index": 0,
        "step_kind": "tool_call",
        "prompt_length": 0,
    },
    "aiagent.shadow.llm.response": {
        **_AGENT_EVENT,
        "incident_id": "inc-payments-1",
        "step_index": 0,
        "step_kind": "tool_call",
        "prompt_tokens": 0,
        "completion_tokens": 0,
        "total_tokens": 0,
    },
    **dict.fromkeys(
        ["aiagent.ratelimit.denied", "aiagent.auth.failure", "aiagent.auth.denied", "datastorage.ratelimit.denied"],
        _AGENT_EVENT,
    ),
    **{
        f"effectiveness.{name}": {**_EFFECTIVENESS, "component": component}
        for name, component in (
            ("health.assessed", "health"),
            ("hash.computed", "hash"),
            ("alert.assessed", "alert"),
            ("metrics.assessed", "metrics"),
            ("assessment.scheduled", "scheduled"),
            ("assessment.completed", "completed"),
            ("alert_decay.detected", "alert_decay"),
        )
    },
    "datastorage.actiontype.created": {
        "action_type": "RestartDeployment",
        "description": _DESCRIPTION,
        "registered_by": "alice",
        "was_reenabled": False,
    },
    "datastorage.actiontype.updated": {
        "action_type": "RestartDeployment",
        "old_description": _DESCRIPTION,
        "new_description": _DESCRIPTION,
        "updated_by": "alice",
        "updated_fields": [],
    },
    "datastorage.actiontype.disabled": {
        "action_type": "RestartDeployment",
        "disabled_by": "alice",
        "disabled_at": _WHEN,
    },
    "datastorage.actiontype.reenabled": {
        "action_type": "RestartDeployment",
        "reenabled_by": "alice",
        "previous_state": "Disabled",
        "disabled_at": _WHEN,
        "disabled_by": "bob",
    },
    "datastorage.actiontype.disable_denied": {
        "action_type": "RestartDeployment",
        "denied_reason": "workflows depend on it",
        "dependent_workflow_count": 0,
        "dependent_workflows": [],
        "requested_by": "alice",
    },
    **{
        f"actiontype.{verdict}.{operation}": {
            **_ACTION_TYPE_ADMISSION,
            "action": operation if verdict == "admitted" else "denied",
        }
        for verdict in ("admitted", "denied")
        for operation in ("create", "update", "delete")
    },
    "agentsession.admitted.create": {**_AGENT_SESSION_ADMISSION, "action": "create"},
    "agentsession.denied.create": {**_AGENT_SESSION_ADMISSION, "action": "denied"},
    "apifrontend.triage.started": {**_FRONTEND_SESSION, "persona": "sre"},
    "apifrontend.triage.completed": {**_FRONTEND_SESSION, "triage_outcome": "rr_created", "triage_duration_ms": 0},
    "apifrontend.rr.created": {
        **_FRONTEND_SESSION,
        "rr_name": "rr-payments-crashloop",
        "rr_namespace": "payments",
        "target_kind": "Deployment",
        "target_name": "payments-api",
        "fingerprint": "5f1c0e9b7a0d",
        "signal_name": "KubePodCrashLooping",
    },
    "apifrontend.rr.deduplicated": {
        **_FRONTEND_SESSION,
        "fingerprint": "5f1c0e9b7a0d",
        "existing_rr_name": "rr-payments-crashloop",
    },
    "apifrontend.session.created": {
        **_FRONTEND_SESSION,
        "a2a_task_id": "task-1",
        "join_mode": "start",
        "user_identity": "alice",
    },
    "apifrontend.session.completed": {**_FRONTEND_SESSION, "terminal_phase": "Completed", "total_duration_ms": 0},
    "apifrontend.ka.delegated": {
        **_FRONTEND_SESSION,
        "ka_correlation_id": "ka-1",
        "delegation_type": "autonomous",
    },
    "apifrontend.ka.result_received": {
        **_FRONTEND_SESSION,
        "ka_correlation_id": "ka-1",
        "result_type": "rca_complete",
    },
    "apifrontend.user.decision": {**_FRONTEND_SESSION, "decision": "accept"},
    "apifrontend.auth.access_denied": {
        "tool_name": "restart",
        "user_role": "viewer",
        "required_roles": [],
        "endpoint": "a2a",
    },
    "apifrontend.tool.executed": {
        **_FRONTEND_SESSION,
        "tool_name": "restart",
        "execution_duration_ms": 0,
        "tool_outcome": "success",
    },
    "apifrontend.workflow.discovery": {"rr_id": "rr-payments-crashloop", "workflow_count": 0},
    "apifrontend.auth.success": {"auth_method": "jwt"},
    "apifrontend.auth.failure": {"auth_method": "jwt", "failure_reason": "expired token"},
    "apifrontend.ratelimit.denied": {"limit_type": "per_user"},
    "apifrontend.circuitbreaker.trip": {"circuit_name": "agent", "failure_count": 0},
    "apifrontend.impersonation.created": {"target_user": "alice"},
    "apifrontend.jwt.delegation": {"target_service": "kubernaut-agent"},
    "apifrontend.session.phase_changed": {**_FRONTEND_SESSION, "from_phase": "Triage", "to_phase": "Delegated"},
    "apifrontend.session.deleted": _FRONTEND_SESSION,
    "apifrontend.session.auto_cancelled": _FRONTEND_SESSION,
    "apifrontend.session.retention_deleted": _FRONTEND_SESSION,
    "apifrontend.a2a.task_started": _FRONTEND_TASK,
    "apifrontend.a2a.task_completed": _FRONTEND_TASK,
    "apifrontend.a2a.task_failed": {**_FRONTEND_TASK, "error": "agent unreachable"},
    "apifrontend.mcp.tool_failed": {"tool_name": "restart", "error": "forbidden"},
    "apifrontend.mcp.session_init": {"mcp_session_id": "mcp-1"},
    "apifrontend.severity_triage.completed": {"severity": "critical", "source_tier": "rules"},
    "apifrontend.severity_triage.failed": {"error": "no rule matched"},
    "apifrontend.config.reloaded": {"config_version": "7"},
    "apifrontend.config.rejected": {"rejection_reason": "unknown key"},
}

#: A category for the types the table leaves open (audit/event_types.py): the emitter's domain.
_OPEN_CATEGORY = {
    "orchestrator": EventCategory.ORCHESTRATION,
    "aiagent": EventCategory.AIAGENT,
    "apifrontend": EventCategory.APIFRONTEND,
}


def rfc3339_seconds(moment: dt.datetime) -> str:
    """A whole-second UTC timestamp, as upstream's Go client writes one."""
    return moment.astimezone(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def event_category_of(event_type: str) -> str:
    category = EVENT_TYPE_CATEGORY[event_type] or _OPEN_CATEGORY[event_type.split(".", 1)[0]]
    return category.value


def event_data_for(event_type: str, /, **fields: Any) -> dict[str, Any]:
    """The minimal valid payload of `event_type`, its own `event_type` first, plus `fields`."""
    return {"event_type": event_type, **copy.deepcopy(MINIMAL_EVENT_DATA[event_type]), **fields}


def event_body(event_type: str = "gateway.signal.received", /, **overrides: Any) -> dict[str, Any]:
    """A valid event of `event_type` with only the required fields, stamped now; `overrides`
    replace or add top-level keys (`event_type=` among them sets the event's own type only)."""
    body: dict[str, Any] = {
        "version": "1.0",
        "event_type": event_type,
        "event_timestamp": rfc3339_seconds(dt.datetime.now(dt.UTC)),
        "event_category": event_category_of(event_type),
        "event_action": event_type.rsplit(".", 1)[-1][:50],
        "event_outcome": "success",
        "correlation_id": f"rr-{uuid.uuid4().hex[:12]}",
        "event_data": event_data_for(event_type),
    }
    body.update(overrides)
    return body


def event_body_full(event_type: str = "gateway.signal.received", /, **overrides: Any) -> dict[str, Any]:
    """A valid event with every optional field of the document set (but the parent)."""
    return event_body(
        event_type,
        actor_type="service",
        actor_id="gateway-service",
        actor_ip="10.0.0.17",
        resource_type="Signal",
        resource_id="fp-5f1c0e9b7a0d",
        namespace="payments",
        cluster_id="prod-eu-1",
        severity="critical",
        duration_ms=42,
        error_code=None,
        error_message=None,
        retention_days=2555,
        is_sensitive=False,
        **overrides,
    )


def event_batch(event_types: Iterable[str], **overrides: Any) -> list[dict[str, Any]]:
    """One event per entry of `event_types`, in that order."""
    return [event_body(event_type, **overrides) for event_type in event_types]


def every_type_batch(**overrides: Any) -> list[dict[str, Any]]:
    """One event of each of the 142 types, in the order audit/event_types.py lists them."""
    return event_batch(EVENT_TYPE_LIST, **overrides)


def event_errors(body: Any, *, now: dt.datetime | None = None) -> dict[str, list[str]]:
    """The error codes by path of validating `body` as one event; {} when it is valid."""
    try:
        audit_event_validated(data=body, now=now or dt.datetime.now(dt.UTC))
    except EventsInvalid as invalid:
        return _codes(invalid)
    return {}


def batch_errors(
    body: Any, *, now: dt.datetime | None = None, max_events: int = AUDIT_EVENTS_BATCH_MAX
) -> dict[str, list[str]]:
    """The error codes by path of validating `body` as a batch; {} when it is valid."""
    try:
        audit_events_validated(data=body, now=now or dt.datetime.now(dt.UTC), max_events=max_events)
    except EventsInvalid as invalid:
        return _codes(invalid)
    return {}


def _codes(invalid: EventsInvalid) -> dict[str, list[str]]:
    codes: dict[str, list[str]] = {}
    for error in invalid.errors:
        codes.setdefault(error.field, []).append(error.code)
    return codes


def event_row_create(*, recorded_at: dt.datetime | None = None, **overrides: Any) -> AuditEvent:
    """A stored event row, written with the ORM (the write path's statement is not needed to
    test the table itself)."""
    now = dt.datetime.now(dt.UTC)
    fields: dict[str, Any] = {
        "recorded_at": recorded_at or now,
        "version": "1.0",
        "event_type": "gateway.signal.received",
        "event_timestamp": now,
        "event_category": "gateway",
        "event_action": "received",
        "event_outcome": "success",
        "correlation_id": f"rr-{uuid.uuid4().hex[:12]}",
        "event_data": event_data_for("gateway.signal.received"),
        "actor": "system:serviceaccount:kubernaut-system:gateway",
        "request_id": "req-1",
        "content_sha256": "0" * 64,
    }
    fields.update(overrides)
    return AuditEvent.objects.create(**fields)


EVENTS_PATH = "/api/v1/audit/events"
EVENTS_BATCH_PATH = "/api/v1/audit/events/batch"


def post_events(client: Any, body: Any, *, path: str = EVENTS_BATCH_PATH, **headers: str) -> Any:
    """POST `body` (JSON-encoded here; bytes as they are) to an audit-event endpoint."""
    data = body if isinstance(body, bytes) else json.dumps(body, ensure_ascii=False)
    return client.post(path, data=data, content_type="application/json", headers=headers)
