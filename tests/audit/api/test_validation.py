"""POST /api/v1/audit/<kind>, for each of the four kinds: the valid body is stored; every invalid
one is a 400 naming the field; every missing required field and every bad field is reported at
once."""

from __future__ import annotations

from typing import Any

import pytest

from audit.models import AuditKind
from testutils.audit_matrix import (
    COMMON_CASES,
    check_all_bad_fields_reported_together,
    check_invalid_field,
    check_missing_required_fields,
)
from testutils.audit_rows import post_audit
from testutils.factories import VALID_BODIES

pytestmark = pytest.mark.django_db

#: (field, an invalid value, the name the error reports) of each kind's own fields.
KIND_CASES: dict[AuditKind, list[tuple[str, Any, str]]] = {
    AuditKind.REMEDIATION: [
        ("signalType", "pagerduty", "signalType"),
        ("signalName", "", "signalName"),
        ("signalNamespace", "UPPER", "signalNamespace"),
        ("targetType", "virtualmachine", "targetType"),
        ("targetName", "bad/name", "targetName"),
        ("targetNamespace", None, "targetNamespace"),
        ("environment", "prod", "environment"),
        ("priority", "P5", "priority"),
        ("fingerprint", "A" * 64, "fingerprint"),
        ("fingerprint", "a" * 63, "fingerprint"),
        ("originalPayload", "not base64!", "originalPayload"),
        ("reason", 42, "reason"),
    ],
    AuditKind.AI_ANALYSIS: [
        ("remediationRequestRef", "Not_A_Name", "remediationRequestRef"),
        ("temperature", 2.5, "temperature"),
        ("temperature", -0.1, "temperature"),
        ("temperature", "0.2", "temperature"),
        ("confidence", 1.01, "confidence"),
        ("confidence", True, "confidence"),
        ("tokensUsed", 0, "tokensUsed"),
        ("tokensUsed", 1.5, "tokensUsed"),
        ("investigationTimeSeconds", -1, "investigationTimeSeconds"),
        ("requiresApproval", "yes", "requiresApproval"),
        ("llmProvider", "Open AI", "llmProvider"),
        ("signalContext", [1, 2], "signalContext"),
        ("signalContext", {"a": {"b": {"c": {"d": {"e": {"f": {"g": 1}}}}}}}, "signalContext"),
        ("signalContext", {f"k{i}": i for i in range(600)}, "signalContext"),
        ("signalContext", {"text": "nul\x00"}, "signalContext"),
        ("rootCause", "r" * (10 * 1024 + 1), "rootCause"),
    ],
    AuditKind.WORKFLOW: [
        ("workflowName", None, "workflowName"),
        ("stepCount", 0, "stepCount"),
        ("currentStep", 4, "currentStep"),
        ("completedCount", -1, "completedCount"),
        ("failedCount", 3, "completedCount"),
        ("isAutoApproved", 1, "isAutoApproved"),
        ("stepStatuses", [{"name": "a", "phase": "Bogus"}], "stepStatuses[0].phase"),
        ("stepStatuses", [{"name": "a", "phase": "Pending", "extra": 1}], "stepStatuses[0].extra"),
        ("stepStatuses", [{"name": "a", "phase": "Pending", "retryCount": -1}], "stepStatuses[0].retryCount"),
        (
            "stepStatuses",
            [
                {
                    "name": "a",
                    "phase": "Completed",
                    "startedAt": "2026-01-02T00:00:00Z",
                    "completedAt": "2026-01-01T00:00:00Z",
                }
            ],
            "stepStatuses[0].completedAt",
        ),
        ("stepStatuses", [{"name": "s", "phase": "Pending"}] * 4, "stepStatuses"),
        ("stepStatuses", "not-a-list", "stepStatuses"),
    ],
    AuditKind.EXECUTION: [
        ("workflowExecutionRef", "", "workflowExecutionRef"),
        ("actionType", "Scale Deployment", "actionType"),
        ("actionData", {"replicas": 3}, "actionData"),
        ("actionData", {f"k{i}": "v" for i in range(65)}, "actionData"),
        ("targetType", "cluster", "targetType"),
        ("targetNamespace", "Bad_NS", "targetNamespace"),
        ("enableDryRun", "false", "enableDryRun"),
        ("validationWarnings", "one warning", "validationWarnings"),
        ("validationWarnings", ["ok", 3], "validationWarnings[1]"),
        ("validationWarnings", ["w"] * 101, "validationWarnings"),
        ("isRolledBack", None, "isRolledBack"),
        ("resourceVersion", "v" * 65, "resourceVersion"),
    ],
}
REQUIRED: dict[AuditKind, list[str]] = {
    AuditKind.REMEDIATION: [
        "name",
        "namespace",
        "phase",
        "createdAt",
        "correlationId",
        "signalType",
        "signalName",
        "signalNamespace",
        "targetType",
        "targetName",
        "targetNamespace",
    ],
    AuditKind.AI_ANALYSIS: ["name", "namespace", "phase", "createdAt", "correlationId", "remediationRequestRef"],
    AuditKind.WORKFLOW: [
        "name",
        "namespace",
        "phase",
        "createdAt",
        "correlationId",
        "remediationRequestRef",
        "workflowName",
    ],
    AuditKind.EXECUTION: [
        "name",
        "namespace",
        "phase",
        "createdAt",
        "correlationId",
        "workflowExecutionRef",
        "actionType",
    ],
}
INVALID_FIELD_CASES = [
    pytest.param(kind, *case, id=f"{kind.value}-{case[0]}-{index}")
    for kind in AuditKind
    for index, case in enumerate(COMMON_CASES + KIND_CASES[kind])
]


@pytest.mark.parametrize("kind", list(AuditKind), ids=lambda kind: kind.value)
def test_valid_body_is_created(api, kind):
    assert post_audit(api, kind, VALID_BODIES[kind]()).status_code == 201


@pytest.mark.parametrize(("kind", "field", "value", "reported_as"), INVALID_FIELD_CASES)
def test_invalid_field_is_rejected_with_its_name(api, kind, field, value, reported_as):
    check_invalid_field(api, kind, field, value, reported_as)


@pytest.mark.parametrize("kind", list(AuditKind), ids=lambda kind: kind.value)
def test_every_missing_required_field_is_reported_at_once(api, kind):
    check_missing_required_fields(api, kind, REQUIRED[kind])


@pytest.mark.parametrize("kind", list(AuditKind), ids=lambda kind: kind.value)
def test_all_bad_fields_are_reported_in_one_response(api, kind):
    check_all_bad_fields_reported_together(api, kind, KIND_CASES[kind])
