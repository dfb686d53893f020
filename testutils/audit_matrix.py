"""The invalid-body matrix every audit endpoint must pass: shared cases and checks."""

from __future__ import annotations

from typing import Any

from audit.models import AuditKind
from testutils.audit_rows import assert_rejected_without_writes, error_fields
from testutils.factories import VALID_BODIES

# (field, bad value, field named in the problem) — fields common to all four kinds.
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


def check_invalid_field(api: Any, kind: AuditKind, field: str, value: Any, reported_as: str) -> None:
    problem = assert_rejected_without_writes(api, kind, VALID_BODIES[kind](**{field: value}))
    assert reported_as in error_fields(problem), problem["errors"]


def check_missing_required_fields(api: Any, kind: AuditKind, required: list[str]) -> None:
    problem = assert_rejected_without_writes(api, kind, {})
    assert error_fields(problem) == set(required)
    assert {error["code"] for error in problem["errors"]} == {"required"}


def check_all_bad_fields_reported_together(api: Any, kind: AuditKind, kind_cases: list[Any]) -> None:
    bad = {field: value for field, value, _ in kind_cases}
    bad.update(name="Bad_Name", namespace="Bad_NS", unexpectedField=1)
    problem = assert_rejected_without_writes(api, kind, VALID_BODIES[kind](**bad))
    reported = error_fields(problem)
    assert {"name", "namespace", "unexpectedField"} <= reported
    # Every field-level problem is reported together (cross-field rules run once fields are valid).
    assert len(reported) >= 3 + len({f for f, _, r in kind_cases if r == f}) // 2
