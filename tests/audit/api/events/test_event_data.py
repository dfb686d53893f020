"""`event_data`: an object whose own `event_type` is one of the 142 and the event's, at most
256 KiB of compact JSON and nested at most 10 deep; otherwise taken as received."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import pytest

from audit.api.events.fields import EVENT_DATA_MAX_BYTES, EVENT_DATA_MAX_NESTING
from audit.api.events.serializers import audit_event_validated
from audit.event_types import EVENT_TYPE_LIST
from testutils.events import event_body, event_data_for, event_errors

TYPE = "gateway.signal.received"


def _validated(body):
    return audit_event_validated(data=body, now=dt.datetime.now(dt.UTC))


@pytest.mark.parametrize("event_type", EVENT_TYPE_LIST)
def test_every_documented_type_is_accepted(event_type):
    validated = _validated(event_body(event_type))
    assert validated.event_data.event_type == event_type
    assert validated.columns["event_type"] == event_type


def test_the_payload_is_kept_as_received_with_keys_upstream_does_not_know():
    payload = event_data_for(
        TYPE,
        severity="critical",
        signal_labels={"alertname": "KubePodCrashLooping"},
        added_by_a_newer_controller={"nested": [1, 2.5, None, True, "x"]},
    )
    validated = _validated(event_body(TYPE, event_data=payload))
    assert validated.event_data.value == payload
    assert json.loads(validated.event_data.json) == payload


def test_the_payload_must_be_an_object():
    for value in ([], "gateway.signal.received", 5):
        assert event_errors(event_body(event_data=value)) == {"event_data": ["invalid"]}
    assert event_errors(event_body(event_data=None)) == {"event_data": ["null"]}


def test_the_payload_must_name_its_type():
    payload = event_data_for(TYPE)
    del payload["event_type"]
    assert event_errors(event_body(TYPE, event_data=payload)) == {"event_data.event_type": ["required"]}


@pytest.mark.parametrize("value", ["gateway.signal.unknown", "aianalysis.aiagent.session_lost", "", 5, None])
def test_the_payloads_type_must_be_a_documented_one(value):
    body = event_body(TYPE, event_data=event_data_for(TYPE, event_type=value))
    assert event_errors(body) == {"event_data.event_type": ["unknown_event_type"]}


def test_the_payloads_type_must_equal_the_events():
    body = event_body(TYPE, event_data=event_data_for("gateway.crd.created"))
    assert event_errors(body) == {"event_data.event_type": ["event_type_mismatch"]}


def test_the_events_own_type_is_free_text_that_must_match_the_payload():
    # The document gives the event's own `event_type` no enum: it is its equality with the
    # payload's that keeps it among the 142.
    body = event_body(TYPE, event_type="Gateway.Signal.Received")
    assert event_errors(body) == {"event_data.event_type": ["event_type_mismatch"]}


def _payload_of_size(size: int, *, char: str = "a") -> dict:
    payload = event_data_for(TYPE, blob="")
    overhead = len(json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode())
    count, remainder = divmod(size - overhead, len(char.encode()))
    payload["blob"] = char * count + "a" * remainder
    assert len(json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()) == size
    return payload


@pytest.mark.parametrize("char", ["a", "é", "漢", "🚀"])
def test_the_size_bound_is_in_bytes_of_compact_json_and_includes_its_limit(char):
    at_limit = _payload_of_size(EVENT_DATA_MAX_BYTES, char=char)
    assert len(_validated(event_body(TYPE, event_data=at_limit)).event_data.json) == EVENT_DATA_MAX_BYTES
    over = _payload_of_size(EVENT_DATA_MAX_BYTES + 1, char=char)
    assert event_errors(event_body(TYPE, event_data=over)) == {"event_data": ["too_large"]}


def test_the_size_is_measured_compact_whatever_whitespace_was_sent():
    # Parsed values carry no whitespace: the same payload is the same size however it was written.
    payload = _payload_of_size(EVENT_DATA_MAX_BYTES)
    pretty = json.loads(json.dumps(payload, indent=8))
    assert event_errors(event_body(TYPE, event_data=pretty)) == {}


def _nested(levels: int, *, container: str) -> dict:
    value: object = "leaf"
    for _ in range(levels):
        value = {"child": value} if container == "object" else [value]
    return event_data_for(TYPE, deep=value)


@pytest.mark.parametrize("container", ["object", "array"])
def test_nesting_counts_containers_inside_the_payload_and_includes_its_limit(container):
    assert EVENT_DATA_MAX_NESTING == 10
    assert event_errors(event_body(TYPE, event_data=_nested(10, container=container))) == {}
    over = _nested(11, container=container)
    assert event_errors(event_body(TYPE, event_data=over)) == {"event_data": ["too_deep"]}


def test_empty_containers_count_as_a_level():
    payload = _nested(10, container="object")
    leaf_parent = payload["deep"]
    for _ in range(9):
        leaf_parent = leaf_parent["child"]
    leaf_parent["child"] = {}
    assert event_errors(event_body(TYPE, event_data=payload)) == {"event_data": ["too_deep"]}


def test_many_shallow_containers_and_brackets_in_strings_are_not_depth():
    payload = event_data_for(TYPE, wide=[{"a": [1]} for _ in range(500)], text="[[[[[[[[[[[[{{{{{{{{{{{{")
    assert event_errors(event_body(TYPE, event_data=payload)) == {}


def test_a_payload_both_too_large_and_too_deep_reports_both():
    payload = _nested(11, container="array")
    payload["blob"] = "a" * EVENT_DATA_MAX_BYTES
    assert event_errors(event_body(TYPE, event_data=payload)) == {"event_data": ["too_large", "too_deep"]}


@pytest.mark.parametrize(
    "payload",
    [
        event_data_for(TYPE, note="a\x00b"),
        event_data_for(TYPE, labels={"a\x00": "b"}),
        event_data_for(TYPE, items=[["\x00"]]),
    ],
)
def test_nul_anywhere_in_the_payload_is_refused(payload):
    assert event_errors(event_body(TYPE, event_data=payload)) == {"event_data": ["nul_character"]}


def test_the_text_backslash_u0000_is_not_a_nul():
    payload = event_data_for(TYPE, note="\\u0000 is how JSON escapes NUL")
    assert _validated(event_body(TYPE, event_data=payload)).event_data.value["note"] == payload["note"]


def test_exact_numbers_are_written_with_their_own_digits():
    payload = event_data_for(TYPE, ratio=Decimal("1.10"), big=Decimal("18446744073709551616"), one=1.0, two=2)
    encoded = _validated(event_body(TYPE, event_data=payload)).event_data.json
    assert b'"ratio":1.10' in encoded
    assert b'"big":18446744073709551616' in encoded
    assert b'"one":1.0' in encoded
    assert b'"two":2' in encoded


def test_discriminator_and_bound_problems_are_reported_together():
    payload = _nested(11, container="object")
    payload["event_type"] = "nope"
    assert event_errors(event_body(TYPE, event_data=payload)) == {
        "event_data.event_type": ["unknown_event_type"],
        "event_data": ["too_deep"],
    }
