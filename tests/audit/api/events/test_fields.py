"""The event's own fields, as upstream's document defines them: each rule accepts what the
document allows and refuses what it does not."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from audit.api.events.fields import INT64_MAX, INT64_MIN
from audit.api.events.serializers import audit_event_validated
from audit.event_types import EventCategory, EventOutcome
from testutils.events import event_body, event_body_full, event_errors

REQUIRED = [
    "version",
    "event_type",
    "event_timestamp",
    "event_category",
    "event_action",
    "event_outcome",
    "correlation_id",
    "event_data",
]
#: Optional, and not `nullable` in the document.
NOT_NULLABLE = ["actor_type", "actor_id", "actor_ip", "resource_type", "resource_id"]
NULLABLE_STRINGS = ["namespace", "cluster_id", "severity", "error_code", "error_message"]
UNBOUNDED_STRINGS = ["actor_type", "actor_id", "resource_type", "resource_id", *NULLABLE_STRINGS]


def _validated(body):
    return audit_event_validated(data=body, now=dt.datetime.now(dt.UTC))


def test_the_minimal_event_and_the_full_event_are_valid():
    assert event_errors(event_body()) == {}
    assert event_errors(event_body_full()) == {}


@pytest.mark.parametrize("field", REQUIRED)
def test_each_required_field_is_required(field):
    body = event_body()
    del body[field]
    assert event_errors(body) == {field: ["required"]}


@pytest.mark.parametrize("field", REQUIRED)
def test_no_required_field_may_be_null(field):
    assert event_errors(event_body(**{field: None})) == {field: ["null"]}


@pytest.mark.parametrize(
    ("field", "limit"), [("version", 20), ("event_action", 50), ("correlation_id", 255), ("actor_ip", 45)]
)
def test_bounded_strings_take_their_length_and_not_one_character_more(field, limit):
    assert event_errors(event_body(**{field: "é" * limit})) == {}
    assert event_errors(event_body(**{field: "é" * (limit + 1)})) == {field: ["max_length"]}


def test_event_type_is_bounded_at_100_characters():
    # A 100-character type passes its own rule; it then differs from the payload's.
    assert event_errors(event_body(event_type="a" * 100)) == {"event_data.event_type": ["event_type_mismatch"]}
    assert event_errors(event_body(event_type="a" * 101)) == {"event_type": ["max_length"]}


@pytest.mark.parametrize("field", ["version", "event_type", "event_action", "correlation_id"])
def test_required_strings_must_not_be_empty(field):
    assert event_errors(event_body(**{field: ""})) == {field: ["blank"]}


@pytest.mark.parametrize("field", UNBOUNDED_STRINGS)
def test_strings_the_document_leaves_unbounded_are_unbounded(field):
    validated = _validated(event_body(**{field: "x" * 100_000}))
    assert validated.columns[field] == "x" * 100_000


@pytest.mark.parametrize("field", [*NOT_NULLABLE, *NULLABLE_STRINGS])
def test_optional_strings_may_be_empty_and_stay_apart_from_absent(field):
    assert _validated(event_body(**{field: ""})).columns[field] == ""
    assert _validated(event_body()).columns[field] is None


@pytest.mark.parametrize("field", NOT_NULLABLE)
def test_optional_strings_that_are_not_nullable_refuse_null(field):
    assert event_errors(event_body(**{field: None})) == {field: ["null"]}


@pytest.mark.parametrize(
    "field",
    [*NULLABLE_STRINGS, "parent_event_id", "parent_event_date", "duration_ms", "retention_days", "is_sensitive"],
)
def test_nullable_fields_take_null_as_absent(field):
    assert _validated(event_body(**{field: None})).columns[field] is None


@pytest.mark.parametrize("field", ["version", "actor_id", "correlation_id", "namespace", "error_message"])
@pytest.mark.parametrize("value", [5, True, ["x"], {"x": 1}])
def test_strings_must_be_strings(field, value):
    assert event_errors(event_body(**{field: value})) == {field: ["invalid"]}


def test_any_character_but_nul_is_a_valid_string():
    # Upstream's document bounds no characters: a Go error text with CR, tabs or ANSI colours
    # must not cost the controller its whole batch.
    text = "line 1\r\nline 2\t\x1b[31mred\x1b[0m \u2028 é 漢字 🚀"
    validated = _validated(event_body(error_message=text, correlation_id=text, actor_id=text))
    assert validated.columns["error_message"] == text
    assert validated.columns["correlation_id"] == text


@pytest.mark.parametrize("field", ["version", "correlation_id", "actor_type", "namespace", "error_message"])
def test_nul_is_refused_because_postgresql_cannot_store_it(field):
    assert event_errors(event_body(**{field: "a\x00b"})) == {field: ["nul_character"]}


def test_a_lone_surrogate_is_refused():
    assert event_errors(event_body(error_message="\ud800")) == {"error_message": ["invalid"]}


@pytest.mark.parametrize("category", EventCategory.values)
def test_every_category_is_accepted_with_any_event_type(category):
    # The document does not tie a category to a type.
    assert event_errors(event_body("gateway.signal.received", event_category=category)) == {}


@pytest.mark.parametrize("category", ["Gateway", "remediation_approval", "", "gateway "])
def test_a_category_outside_the_enum_is_refused(category):
    assert event_errors(event_body(event_category=category)) == {"event_category": ["invalid_choice"]}


@pytest.mark.parametrize("outcome", EventOutcome.values)
def test_every_outcome_is_accepted(outcome):
    assert event_errors(event_body(event_outcome=outcome)) == {}


@pytest.mark.parametrize("outcome", ["Success", "succeeded", "", 1])
def test_an_outcome_outside_the_enum_is_refused(outcome):
    assert event_errors(event_body(event_outcome=outcome)) == {"event_outcome": ["invalid_choice"]}


@pytest.mark.parametrize("field", ["duration_ms", "retention_days"])
def test_integers_are_64_bit_json_integers_without_other_bounds(field):
    for value in (0, -1, 1, 2555, 2556, INT64_MIN, INT64_MAX):
        assert _validated(event_body(**{field: value})).columns[field] == value
    assert _validated(event_body(**{field: 2.0})).columns[field] == 2
    assert event_errors(event_body(**{field: INT64_MAX + 1})) == {field: ["max_value"]}
    assert event_errors(event_body(**{field: INT64_MIN - 1})) == {field: ["min_value"]}
    for value in (2.5, "2", True):
        assert event_errors(event_body(**{field: value})) == {field: ["invalid"]}


def test_is_sensitive_is_a_boolean():
    assert _validated(event_body(is_sensitive=True)).columns["is_sensitive"] is True
    assert event_errors(event_body(is_sensitive="true")) == {"is_sensitive": ["invalid"]}


def test_parent_event_id_must_be_a_uuid_in_its_canonical_form():
    for value in ("not-a-uuid", "{12345678-1234-1234-1234-123456789abc}", "12345678123412341234123456789abc", 5):
        assert event_errors(event_body(parent_event_id=value)) == {"parent_event_id": ["invalid"]}


def test_not_an_object_is_refused_as_a_whole():
    for body in ([], "event", 5, None):
        assert event_errors(body) == {"": ["invalid"]}


def test_cluster_name_is_read_as_cluster_id():
    body = event_body()
    body["cluster_name"] = "prod-eu-1"
    validated = _validated(body)
    assert validated.columns["cluster_id"] == "prod-eu-1"
    assert validated.extra_fields is None


def test_cluster_name_fills_a_null_cluster_id():
    body = event_body(cluster_id=None)
    body["cluster_name"] = "prod-eu-1"
    assert _validated(body).columns["cluster_id"] == "prod-eu-1"


def test_when_both_are_sent_cluster_id_wins_and_cluster_name_is_kept_as_sent():
    body = event_body(cluster_id="c-1")
    body["cluster_name"] = "prod-eu-1"
    validated = _validated(body)
    assert validated.columns["cluster_id"] == "c-1"
    assert validated.extra_fields == {"cluster_name": "prod-eu-1"}


def test_an_invalid_cluster_name_is_named_as_sent():
    body = event_body()
    body["cluster_name"] = 7
    assert event_errors(body) == {"cluster_name": ["invalid"]}


def test_unknown_top_level_keys_are_accepted_and_kept_as_received():
    extra = {"trace_id": "4bf92f3577b34da6", "labels": {"team": "sre", "nested": [1, 2.5, None]}, "flag": False}
    validated = _validated(event_body(**extra))
    assert validated.extra_fields == extra
    assert json.loads(validated.extra_fields_json) == extra
    assert _validated(event_body()).extra_fields_json is None


def test_an_unknown_key_holding_nul_is_refused_by_name():
    assert event_errors(event_body(trace={"id": "a\x00"})) == {"trace": ["nul_character"]}


def test_every_problem_of_an_event_is_reported_at_once():
    body = event_body(version="", event_outcome="ok", actor_ip="1" * 46, duration_ms="5")
    del body["correlation_id"]
    assert event_errors(body) == {
        "version": ["blank"],
        "event_outcome": ["invalid_choice"],
        "actor_ip": ["max_length"],
        "correlation_id": ["required"],
        "duration_ms": ["invalid"],
    }


def test_columns_name_every_field_of_the_document_but_the_payload():
    columns = _validated(event_body_full()).columns
    assert set(columns) == {
        *REQUIRED,
        *NOT_NULLABLE,
        *NULLABLE_STRINGS,
        "parent_event_id",
        "parent_event_date",
        "duration_ms",
        "retention_days",
        "is_sensitive",
    } - {"event_data"}
