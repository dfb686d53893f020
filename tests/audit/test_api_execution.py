"""POST /api/v1/audit/execution: the valid body is stored; every invalid one is a 400 naming the field."""

from __future__ import annotations

import pytest

from audit.models import AuditKind
from tests.factories import VALID_BODIES
from tests.support.audit_rows import assert_rejected_without_writes, error_fields, post_audit

pytestmark = pytest.mark.django_db

KIND = AuditKind.EXECUTION

COMMON_CASES = [
    ("name", "Payments_API", "name"),
    ("name", "a" * 254, "name"),
    ("namespace", "a" * 64, "namespace"),
    ("namespace", "pay.ments", "namespace"),
    ("phase", "Done", "phase"),
    ("phase", None, "phase"),
    ("message", "x" * (10 * 1024 + 1), "message"),
    ("message", "nul\x00byte", "message"),
    ("message", "escape\x1b[31m", "message"),
    ("createdAt", "2026-01-01T00:00:00", "createdAt"),
    ("createdAt", "yesterday", "createdAt"),
    ("createdAt", 1767225600, "createdAt"),
    ("createdAt", "2999-01-01T00:00:00Z", "createdAt"),
    ("startedAt", "2000-01-01T00:00:00Z", "startedAt"),
    ("correlationId", "-starts-with-dash", "correlationId"),
    ("correlationId", "has space", "correlationId"),
    ("correlationId", "c" * 256, "correlationId"),
    ("labels", {"team": 7}, "labels"),
    ("labels", {"bad key!": "x"}, "labels"),
    ("labels", {f"k{i}": "v" for i in range(65)}, "labels"),
    ("labels", ["not", "a", "map"], "labels"),
    ("unexpectedField", 1, "unexpectedField"),
    ("correlation_id", "snake-case-is-unknown", "correlation_id"),
]

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
    problem = assert_rejected_without_writes(api, KIND, VALID_BODIES[KIND](**{field: value}))
    assert reported_as in error_fields(problem), problem["errors"]


def test_every_missing_required_field_is_reported_at_once(api):
    problem = assert_rejected_without_writes(api, KIND, {})
    assert error_fields(problem) == set(REQUIRED)
    assert {error["code"] for error in problem["errors"]} == {"required"}


def test_all_bad_fields_are_reported_in_one_response(api):
    bad = {field: value for field, value, _ in KIND_CASES}
    bad.update(name="Bad_Name", namespace="Bad_NS", unexpectedField=1)
    problem = assert_rejected_without_writes(api, KIND, VALID_BODIES[KIND](**bad))
    reported = error_fields(problem)
    assert {"name", "namespace", "unexpectedField"} <= reported
    # Every field-level problem is reported together (cross-field rules run once fields are valid).
    assert len(reported) >= 3 + len({f for f, _, r in KIND_CASES if r == f}) // 2
