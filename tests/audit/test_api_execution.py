"""POST /api/v1/audit/execution: the valid body is stored; every invalid one is a 400 naming the field."""

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

KIND = AuditKind.EXECUTION

KIND_CASES = [
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
]
REQUIRED = ["name", "namespace", "phase", "createdAt", "correlationId", "workflowExecutionRef", "actionType"]


def test_valid_body_is_created(api):
    assert post_audit(api, KIND, VALID_BODIES[KIND]()).status_code == 201


@pytest.mark.parametrize(("field", "value", "reported_as"), COMMON_CASES + KIND_CASES)
def test_invalid_field_is_rejected_with_its_name(api, field, value, reported_as):
    check_invalid_field(api, KIND, field, value, reported_as)


def test_every_missing_required_field_is_reported_at_once(api):
    check_missing_required_fields(api, KIND, REQUIRED)


def test_all_bad_fields_are_reported_in_one_response(api):
    check_all_bad_fields_reported_together(api, KIND, KIND_CASES)
