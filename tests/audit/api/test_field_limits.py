"""Every bounded field, at the edge of what the contract allows: the largest value is stored
intact (201), one past it is a 400 that names the field — never a 500 from a column too small.

The cases are derived from the serializers themselves (the same declarations the models and the
OpenAPI document use), so a field added later is covered, or fails `test_every_field_is_covered`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from rest_framework import serializers

from audit import limits
from audit.api.fields import (
    Base64Field,
    BoundedJSONObjectField,
    PatternField,
    RFC3339DateTimeField,
    StrictBooleanField,
    StrictCharField,
    StrictChoiceField,
    StrictFloatField,
    StrictIntegerField,
    StringMapField,
)
from audit.api.serializers import AUDIT_SERIALIZERS, StepStatusSerializer, camel
from audit.models import AUDIT_MODELS, AuditKind
from testutils.audit_rows import assert_problem, post_audit
from testutils.factories import VALID_BODIES

pytestmark = pytest.mark.django_db

#: Non-ASCII, 3 bytes in UTF-8: the free-text limits count characters, as the columns do.
WIDE = "€"
#: Fields with no size to reach: their values are fixed by type or form.
UNBOUNDED = (StrictBooleanField, RFC3339DateTimeField)

Case = tuple[str, dict[str, Any], str | None]  # (what, body overrides, the field a 400 names; None: 201)


def _string_cases(name: str, field: StrictCharField) -> Iterator[Case]:
    if isinstance(field, Base64Field):
        # The smallest longer value that is still base64: length, not form, must be the reason.
        yield f"{name} at max", {name: "A" * field.max_length}, None
        yield f"{name} past max", {name: "A" * (field.max_length + 4)}, name
        return
    if isinstance(field, PatternField):
        # Every pattern here (names, ids, the hex fingerprint) takes a run of "a".
        assert field.max_length is not None, name
        assert field.pattern.match("a" * field.max_length), name
        yield f"{name} at max", {name: "a" * field.max_length}, None
        yield f"{name} past max", {name: "a" * (field.max_length + 1)}, name
        return
    assert field.max_length is not None, f"{name} has no maximum length"
    yield f"{name} at max", {name: WIDE * field.max_length}, None
    yield f"{name} past max", {name: WIDE * (field.max_length + 1)}, name


def _labels(entries: int, key_length: int, value_length: int) -> dict[str, str]:
    """Kubernetes label keys `<prefix>/<name>`: a prefix up to 253 and a name up to 63 characters."""
    name_length = min(63, key_length - 5)
    prefix_length = key_length - name_length - 1
    return {
        f"{index:04d}{'p' * (prefix_length - 4)}/{'n' * name_length}": "v" * value_length for index in range(entries)
    }


def _map_cases(name: str, field: StringMapField) -> Iterator[Case]:
    def build(entries: int, key_length: int, value_length: int) -> dict[str, str]:
        if field.key_pattern is not None:
            return _labels(entries, key_length, value_length)
        return {f"{index:04d}{WIDE * (key_length - 4)}": WIDE * value_length for index in range(entries)}

    most, key, value = field.max_entries, field.max_key_length, field.max_value_length
    yield f"{name} at max", {name: build(most, key, value)}, None
    yield f"{name} past max entries", {name: build(most + 1, key, value)}, name
    yield f"{name} past max key", {name: build(1, key + 1, value)}, name
    yield f"{name} past max value", {name: build(1, key, value + 1)}, name


def _nested(depth: int, leaf: Any) -> dict[str, Any]:
    node: Any = leaf
    for _ in range(depth - 1):
        node = {"d": node}
    return node  # type: ignore[no-any-return]


def _json_object_cases(name: str, field: BoundedJSONObjectField) -> Iterator[Case]:
    deepest = _nested(field.max_depth, {"text": WIDE * field.max_string_length})
    widest = {f"k{index}": [index] for index in range(field.max_items - 1)}
    yield f"{name} at max depth and string", {name: deepest}, None
    yield f"{name} at max items", {name: {**widest, "list": list(range(field.max_items))}}, None
    yield f"{name} past max depth", {name: _nested(field.max_depth + 1, {})}, name
    yield f"{name} past max string", {name: {"text": WIDE * (field.max_string_length + 1)}}, name
    yield f"{name} past max keys", {name: {f"k{index}": 0 for index in range(field.max_items + 1)}}, name
    yield f"{name} past max items", {name: {"list": list(range(field.max_items + 1))}}, name


def _number_cases(name: str, field: StrictIntegerField | StrictFloatField) -> Iterator[Case]:
    past = field.max_value + (1 if isinstance(field, StrictIntegerField) else field.max_value * 1e-9 or 1e-9)
    yield f"{name} at max", {name: field.max_value}, None
    yield f"{name} past max", {name: past}, name
    yield f"{name} below min", {name: field.min_value - 1}, name


def field_cases(name: str, field: serializers.Field) -> Iterator[Case]:
    if isinstance(field, StrictCharField):
        yield from _string_cases(name, field)
    elif isinstance(field, StringMapField):
        yield from _map_cases(name, field)
    elif isinstance(field, BoundedJSONObjectField):
        yield from _json_object_cases(name, field)
    elif isinstance(field, StrictIntegerField | StrictFloatField):
        yield from _number_cases(name, field)
    elif isinstance(field, StrictChoiceField):
        longest = max(field.choices, key=len)
        yield f"{name} longest choice", {name: longest}, None
    elif isinstance(field, serializers.ListField):
        assert isinstance(field.child, StrictCharField)
        assert field.child.max_length is not None
        most, item = field.max_length, field.child.max_length
        yield f"{name} at max", {name: [WIDE * item] * most}, None
        yield f"{name} past max items", {name: [WIDE] * (most + 1)}, name
        yield f"{name} past max item", {name: [WIDE * (item + 1)]}, f"{name}[0]"
    elif not isinstance(field, UNBOUNDED):
        raise AssertionError(f"{name}: no limit cases for {type(field).__name__}")


def _step_cases() -> Iterator[Case]:
    """`stepStatuses`: the list's own bound, then each nested field's, inside one step."""
    most = limits.WORKFLOW_MAX_STEPS
    full_workflow = {"stepCount": most, "currentStep": 0, "completedCount": 0, "failedCount": 0, "skippedCount": 0}
    steps = [{"name": f"s{index}", "phase": "Pending"} for index in range(most)]
    yield "stepStatuses at max", {**full_workflow, "stepStatuses": steps}, None
    yield "stepStatuses past max", {**full_workflow, "stepStatuses": [*steps, steps[0]]}, "stepStatuses"
    for name, field in StepStatusSerializer().fields.items():
        for what, overrides, reported in field_cases(camel(name), field):
            step = {"name": "step", "phase": "Pending", **overrides}
            yield f"stepStatuses[0].{what}", {"stepStatuses": [step]}, reported and f"stepStatuses[0].{reported}"


def _workflow_companions(overrides: dict[str, Any]) -> dict[str, Any]:
    """Counts at their bound need a stepCount that admits them (a cross-field rule)."""
    counts = ("currentStep", "completedCount", "failedCount", "skippedCount")
    if not any(name in overrides for name in counts):
        return overrides
    zeroes = {name: 0 for name in counts}
    return {**zeroes, "stepCount": limits.WORKFLOW_MAX_STEPS, "stepStatuses": [], **overrides}


def kind_cases(kind: AuditKind) -> Iterator[Case]:
    for name, field in AUDIT_SERIALIZERS[kind]().fields.items():
        if isinstance(field, serializers.ListSerializer):
            assert name == "step_statuses"
            yield from _step_cases()
            continue
        for what, overrides, reported in field_cases(camel(name), field):
            if kind is AuditKind.WORKFLOW:
                overrides = _workflow_companions(overrides)
            yield what, overrides, reported


CASES = [(kind, *case) for kind in AuditKind for case in kind_cases(kind)]


def test_every_field_is_covered():
    for kind in AuditKind:
        covered = {re.match(r"[A-Za-z]+", what)[0] for what, _, _ in kind_cases(kind)}  # type: ignore[index]
        bounded = {
            camel(name) for name, field in AUDIT_SERIALIZERS[kind]().fields.items() if not isinstance(field, UNBOUNDED)
        }
        assert bounded <= covered, bounded - covered


@pytest.mark.parametrize(("kind", "what", "overrides", "reported"), CASES, ids=[f"{c[0].value}:{c[1]}" for c in CASES])
def test_a_value_at_the_limit_is_stored_intact_and_one_past_it_is_refused(
    api: Any, kind: AuditKind, what: str, overrides: dict[str, Any], reported: str | None
) -> None:
    body = VALID_BODIES[kind](**overrides)
    response = post_audit(api, kind, body)
    if reported is not None:
        problem = assert_problem(response, 400)
        assert reported in {error["field"] for error in problem["errors"]}, problem["errors"]
        return
    assert response.status_code == 201, response.content[:1000]
    row = AUDIT_MODELS[kind].objects.get(id=response.json()["id"])
    assert row.payload == body
    columns = {camel(field.name): field.name for field in row._meta.get_fields()}
    for key, value in overrides.items():
        if key in columns and not isinstance(value, dict | list):
            assert getattr(row, columns[key]) == value, key
