"""A batch: a JSON array of 1 to AUDIT_EVENTS_BATCH_MAX events, valid all or nothing, every
problem named by its event's index."""

from __future__ import annotations

import datetime as dt

import pytest

from audit.api.events.serializers import (
    AUDIT_EVENTS_BATCH_MAX,
    MAX_REPORTED_ERRORS,
    EventBatchSizeInvalid,
    EventsInvalid,
    audit_event_validated,
    audit_events_validated,
)
from audit.event_types import EVENT_TYPE_LIST
from testutils.events import batch_errors, event_batch, event_body, every_type_batch


def _validated(body, **kwargs):
    return audit_events_validated(data=body, now=dt.datetime.now(dt.UTC), **kwargs)


def test_one_event_of_every_type_in_one_batch_is_valid_and_kept_in_order():
    events = _validated(every_type_batch())
    assert [event.columns["event_type"] for event in events] == list(EVENT_TYPE_LIST)


def test_a_batch_of_the_default_maximum_is_valid():
    assert AUDIT_EVENTS_BATCH_MAX == 1000
    batch = event_batch(EVENT_TYPE_LIST[index % len(EVENT_TYPE_LIST)] for index in range(AUDIT_EVENTS_BATCH_MAX))
    assert len(_validated(batch)) == AUDIT_EVENTS_BATCH_MAX


def test_the_maximum_is_inclusive_and_one_more_is_refused_before_any_event_is_looked_at():
    assert len(_validated(event_batch(["gateway.crd.created"] * 3), max_events=3)) == 3
    over = [*event_batch(["gateway.crd.created"] * 3), {"not": "an event"}]
    with pytest.raises(EventBatchSizeInvalid) as refused:
        _validated(over, max_events=3)
    assert [(error.field, error.code) for error in refused.value.errors] == [("", "too_many")]


def test_an_empty_batch_is_refused_as_a_batch_size_problem():
    with pytest.raises(EventBatchSizeInvalid) as refused:
        _validated([])
    assert [(error.field, error.code) for error in refused.value.errors] == [("", "empty")]


@pytest.mark.parametrize("body", [{"events": []}, event_body(), "[]", None])
def test_a_body_that_is_not_an_array_is_refused(body):
    assert batch_errors(body) == {"": ["not_a_list"]}


def test_errors_name_each_bad_event_by_its_index_and_nothing_is_valid():
    batch = event_batch(EVENT_TYPE_LIST[index % len(EVENT_TYPE_LIST)] for index in range(1000))
    batch[3]["event_data"]["event_type"] = "gateway.signal.unknown"
    batch[997]["version"] = ""
    del batch[997]["correlation_id"]
    batch[500] = "not an event"
    assert batch_errors(batch) == {
        "[3].event_data.event_type": ["unknown_event_type"],
        "[500]": ["invalid"],
        "[997].version": ["blank"],
        "[997].correlation_id": ["required"],
    }


def test_errors_are_listed_in_input_order_whatever_rule_found_them():
    batch = event_batch(["gateway.crd.created"] * 5)
    batch[4]["event_outcome"] = "done"
    batch[1]["event_data"] = []
    errors = list(batch_errors(batch))
    assert errors == ["[1].event_data", "[4].event_outcome"]


def test_at_most_100_errors_are_listed_and_all_are_counted():
    batch = event_batch(["gateway.crd.created"] * 150)
    for event in batch:
        event["version"] = ""
        event["event_outcome"] = "done"
    with pytest.raises(EventsInvalid) as refused:
        _validated(batch)
    assert refused.value.error_count == 300
    assert len(refused.value.errors) == MAX_REPORTED_ERRORS == 100
    assert refused.value.errors[0].field == "[0].version"
    assert refused.value.errors[-1].field == "[49].event_outcome"
    # DRF's view of it: the same errors, by path, for the exception handler.
    assert sum(len(errors) for errors in refused.value.detail.values()) == 100


def test_a_single_event_names_its_fields_without_an_index():
    with pytest.raises(EventsInvalid) as refused:
        audit_event_validated(data=event_body(version=""), now=dt.datetime.now(dt.UTC))
    assert [(error.field, error.code) for error in refused.value.errors] == [("version", "blank")]
    assert dict(refused.value.detail) == {"version": ["Must not be empty."]}
