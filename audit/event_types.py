"""Upstream Kubernaut's audit events: their types, categories and outcomes, declared once.

An event's `event_data` names its type in `event_data.event_type`, which upstream's API
document uses as the discriminator of 94 payload shapes; the values below are every key of that
discriminator (142), and nothing else is accepted. The validation (audit/api/events/), the
test builders (testutils/events.py) and the docs (docs/UPSTREAM.md) all read this module.

Each type is listed under the category its domain belongs to, as far as the document's
descriptions of the 14 categories make that clear, or under `None` where more than one category
fits (an approval step reported by the orchestrator, authentication and rate-limit denials of a
service that could be `security` or that service's own domain). The category is information
only: the document does not tie `event_category` to `event_type`, so an event's category is
checked against the 14 values and never against its type.

To add an event type (upstream added a key to the discriminator):

1. add its name to the group of its domain below (or a new group, with a comment), under the
   category the document's descriptions give it, or under `None` if several fit;
2. add a minimal valid `event_data` for it to `MINIMAL_EVENT_DATA` in testutils/events.py
   (the test that every type has one fails until you do);
3. raise `DOCUMENTED_EVENT_TYPE_COUNT` in tests/audit/test_event_types.py to the document's
   new count.

No migration is needed: `event_type` is a text column, not a database enum.
"""

from __future__ import annotations

from django.db import models


class EventCategory(models.TextChoices):
    """`event_category`: the business domain of an event (the document's 14 values)."""

    GATEWAY = "gateway", "Gateway"
    NOTIFICATION = "notification", "Notification"
    ANALYSIS = "analysis", "Analysis"
    AIAGENT = "aiagent", "AI agent"
    SIGNALPROCESSING = "signalprocessing", "Signal processing"
    WORKFLOW = "workflow", "Workflow"
    WORKFLOWEXECUTION = "workflowexecution", "Workflow execution"
    ORCHESTRATION = "orchestration", "Orchestration"
    APPROVAL = "approval", "Approval"
    EFFECTIVENESS = "effectiveness", "Effectiveness"
    ACTIONTYPE = "actiontype", "Action type"
    APIFRONTEND = "apifrontend", "API frontend"
    SECURITY = "security", "Security"
    AGENTSESSION = "agentsession", "Agent session"


class EventOutcome(models.TextChoices):
    """`event_outcome`."""

    SUCCESS = "success"
    FAILURE = "failure"
    PENDING = "pending"


Category = EventCategory | None

#: (category, types) in groups by domain. A tuple, not a dict, so that a name listed twice is
#: visible to the tests instead of silently merged.
_GROUPS: tuple[tuple[Category, tuple[str, ...]], ...] = (
    # The Gateway: alerts received, deduplicated, turned into RemediationRequests; its config.
    (
        EventCategory.GATEWAY,
        (
            "gateway.signal.received",
            "gateway.signal.deduplicated",
            "gateway.crd.created",
            "gateway.crd.failed",
            "gateway.config.reloaded",
            "gateway.config.rejected",
        ),
    ),
    # The Remediation Orchestrator drives a RemediationRequest through its phases.
    (
        EventCategory.ORCHESTRATION,
        (
            "orchestrator.lifecycle.started",
            "orchestrator.lifecycle.created",
            "orchestrator.lifecycle.transitioned",
            "orchestrator.lifecycle.verifying_started",
            "orchestrator.lifecycle.verification_completed",
            "orchestrator.lifecycle.verification_timed_out",
            "orchestrator.lifecycle.completed",
            "orchestrator.lifecycle.failed",
            "orchestrator.remediation.manual_review",
            "orchestrator.routing.blocked",
            "orchestrator.ea.created",
            "remediation.workflow_created",
            "webhook.remediationrequest.timeout_modified",
        ),
    ),
    # Approval steps as the orchestrator reports them: orchestration or approval both fit.
    (
        None,
        (
            "orchestrator.approval.requested",
            "orchestrator.approval.approved",
            "orchestrator.approval.rejected",
        ),
    ),
    # A human's decision on a RemediationApprovalRequest, recorded by the admission webhook.
    (EventCategory.APPROVAL, ("webhook.remediationapprovalrequest.decided",)),
    # Signal Processing enriches and classifies a signal.
    (
        EventCategory.SIGNALPROCESSING,
        (
            "signalprocessing.signal.processed",
            "signalprocessing.phase.transition",
            "signalprocessing.enrichment.completed",
            "signalprocessing.classification.decision",
            "signalprocessing.business.classified",
            "signalprocessing.error.occurred",
        ),
    ),
    # AI Analysis: the analysis, its calls to the agent, approval policy and Rego evaluation.
    (
        EventCategory.ANALYSIS,
        (
            "aianalysis.analysis.completed",
            "aianalysis.analysis.failed",
            "aianalysis.phase.transition",
            "aianalysis.aiagent.call",
            "aianalysis.aiagent.submit",
            "aianalysis.aiagent.result",
            "aianalysis.approval.decision",
            "aianalysis.rego.evaluation",
            "aianalysis.error.occurred",
        ),
    ),
    # Workflow Execution runs the selected workflow; a blocked execution can be cleared.
    (
        EventCategory.WORKFLOWEXECUTION,
        (
            "workflowexecution.selection.completed",
            "workflowexecution.workflow.started",
            "workflowexecution.execution.started",
            "workflowexecution.workflow.completed",
            "workflowexecution.workflow.failed",
            "workflowexecution.block.cleared",
        ),
    ),
    # Notifications: delivery by the notification controller, and changes through the webhook.
    (
        EventCategory.NOTIFICATION,
        (
            "notification.message.sent",
            "notification.message.failed",
            "notification.message.acknowledged",
            "notification.message.escalated",
            "webhook.notification.cancelled",
            "webhook.notification.acknowledged",
        ),
    ),
    # The workflow catalog: discovery queries, catalog changes, RemediationWorkflow admission.
    (
        EventCategory.WORKFLOW,
        (
            "workflow.catalog.actions_listed",
            "workflow.catalog.workflows_listed",
            "workflow.catalog.workflow_retrieved",
            "workflow.catalog.selection_validated",
            "datastorage.workflow.created",
            "datastorage.workflow.updated",
            "remediationworkflow.admitted.create",
            "remediationworkflow.admitted.update",
            "remediationworkflow.admitted.delete",
            "remediationworkflow.admitted.denied",
            "authwebhook.workflow.registration_failed",
        ),
    ),
    # The AI agent (Kubernaut Agent): investigations, LLM traffic, sessions, alignment checks.
    (
        EventCategory.AIAGENT,
        (
            "aiagent.enrichment.completed",
            "aiagent.enrichment.failed",
            "aiagent.llm.request",
            "aiagent.llm.response",
            "aiagent.llm.tool_call",
            "aiagent.shadow.llm.request",
            "aiagent.shadow.llm.response",
            "aiagent.alignment.step",
            "aiagent.alignment.verdict",
            "aiagent.workflow.validation_attempt",
            "aiagent.rca.complete",
            "aiagent.response.complete",
            "aiagent.response.failed",
            "aiagent.investigation.cancelled",
            "aiagent.session.started",
            "aiagent.session.observed",
            "aiagent.session.suspended",
            "aiagent.session.resumed",
            "aiagent.session.completed",
            "aiagent.session.failed",
            "aiagent.session.cancelled",
            "aiagent.session.access_denied",
            "aiagent.interactive.started",
            "aiagent.interactive.k8s_call",
            "aiagent.interactive.completed",
            "aiagent.secret.accessed",
        ),
    ),
    # The agent's HTTP-layer denials: aiagent or security both fit.
    (None, ("aiagent.ratelimit.denied", "aiagent.auth.failure", "aiagent.auth.denied")),
    # The document's own example of `security`: a rate-limit denial tied to no business domain.
    (EventCategory.SECURITY, ("datastorage.ratelimit.denied",)),
    # The Effectiveness Monitor assesses what a remediation achieved.
    (
        EventCategory.EFFECTIVENESS,
        (
            "effectiveness.assessment.scheduled",
            "effectiveness.health.assessed",
            "effectiveness.hash.computed",
            "effectiveness.alert.assessed",
            "effectiveness.metrics.assessed",
            "effectiveness.alert_decay.detected",
            "effectiveness.assessment.completed",
        ),
    ),
    # The ActionType taxonomy: catalog changes and ActionType admission.
    (
        EventCategory.ACTIONTYPE,
        (
            "datastorage.actiontype.created",
            "datastorage.actiontype.updated",
            "datastorage.actiontype.disabled",
            "datastorage.actiontype.reenabled",
            "datastorage.actiontype.disable_denied",
            "actiontype.admitted.create",
            "actiontype.admitted.update",
            "actiontype.admitted.delete",
            "actiontype.denied.create",
            "actiontype.denied.update",
            "actiontype.denied.delete",
        ),
    ),
    # AgentSession admission.
    (EventCategory.AGENTSESSION, ("agentsession.admitted.create", "agentsession.denied.create")),
    # The API frontend: triage, sessions, delegation to the agent, tools, its config.
    (
        EventCategory.APIFRONTEND,
        (
            "apifrontend.triage.started",
            "apifrontend.triage.completed",
            "apifrontend.severity_triage.completed",
            "apifrontend.severity_triage.failed",
            "apifrontend.rr.created",
            "apifrontend.rr.deduplicated",
            "apifrontend.session.created",
            "apifrontend.session.phase_changed",
            "apifrontend.session.completed",
            "apifrontend.session.deleted",
            "apifrontend.session.auto_cancelled",
            "apifrontend.session.retention_deleted",
            "apifrontend.ka.delegated",
            "apifrontend.ka.result_received",
            "apifrontend.user.decision",
            "apifrontend.tool.executed",
            "apifrontend.workflow.discovery",
            "apifrontend.a2a.task_started",
            "apifrontend.a2a.task_completed",
            "apifrontend.a2a.task_failed",
            "apifrontend.mcp.session_init",
            "apifrontend.mcp.tool_failed",
            "apifrontend.circuitbreaker.trip",
            "apifrontend.impersonation.created",
            "apifrontend.jwt.delegation",
            "apifrontend.config.reloaded",
            "apifrontend.config.rejected",
        ),
    ),
    # The frontend's authentication and rate-limit outcomes: apifrontend or security both fit.
    (
        None,
        (
            "apifrontend.auth.success",
            "apifrontend.auth.failure",
            "apifrontend.auth.access_denied",
            "apifrontend.ratelimit.denied",
        ),
    ),
)

#: Every event type in the order listed above (a name listed twice would appear twice).
EVENT_TYPE_LIST: tuple[str, ...] = tuple(name for _, names in _GROUPS for name in names)
#: The accepted values of `event_data.event_type`.
EVENT_TYPES: frozenset[str] = frozenset(EVENT_TYPE_LIST)
#: The category each type's domain belongs to, or None where several fit. Information only.
EVENT_TYPE_CATEGORY: dict[str, Category] = {name: category for category, names in _GROUPS for name in names}

# The document's bounds on an event's own fields, in characters; the model's columns are as wide.
VERSION_LENGTH = 20
EVENT_TYPE_LENGTH = 100
EVENT_CATEGORY_LENGTH = 50
EVENT_ACTION_LENGTH = 50
ACTOR_IP_LENGTH = 45
CORRELATION_ID_LENGTH = 255
