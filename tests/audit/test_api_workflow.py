"""POST /api/v1/audit/workflow: the valid body is stored; every invalid one is a 400 naming the field."""

from __future__ import annotations

import pytest

from audit.models import AuditKind
from tests.factories import VALID_BODIES
from tests.support.audit_matrix import (
    COMMON_CASES,
    check_all_bad_fields_reported_together,
    check_invalid_field,
    check_missing_required_fields,
)
from tests.support.audit_rows import post_audit

pytestmark = pytest.mark.django_db

KIND = AuditKind.WORKFLOW

KIND_CASES = [
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
]
REQUIRED = ["name", "namespace", "phase", "createdAt", "correlationId", "remediationRequestRef", "workflowName"]


def test_valid_body_is_created(api):
    assert post_audit(api, KIND, VALID_BODIES[KIND]()).status_code == 201


@pytest.mark.parametrize(("field", "value", "reported_as"), COMMON_CASES + KIND_CASES)
def test_invalid_field_is_rejected_with_its_name(api, field, value, reported_as):
    check_invalid_field(api, KIND, field, value, reported_as)


def test_every_missing_required_field_is_reported_at_once(api):
    check_missing_required_fields(api, KIND, REQUIRED)


def test_all_bad_fields_are_reported_in_one_response(api):
    check_all_bad_fields_reported_together(api, KIND, KIND_CASES)
