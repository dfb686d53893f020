"""POST /api/v1/audit/aianalysis: the valid body is stored; every invalid one is a 400 naming the field."""

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

KIND = AuditKind.AI_ANALYSIS

KIND_CASES = [
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
]
REQUIRED = ["name", "namespace", "phase", "createdAt", "correlationId", "remediationRequestRef"]


def test_valid_body_is_created(api):
    assert post_audit(api, KIND, VALID_BODIES[KIND]()).status_code == 201


@pytest.mark.parametrize(("field", "value", "reported_as"), COMMON_CASES + KIND_CASES)
def test_invalid_field_is_rejected_with_its_name(api, field, value, reported_as):
    check_invalid_field(api, KIND, field, value, reported_as)


def test_every_missing_required_field_is_reported_at_once(api):
    check_missing_required_fields(api, KIND, REQUIRED)


def test_all_bad_fields_are_reported_in_one_response(api):
    check_all_bad_fields_reported_together(api, KIND, KIND_CASES)
