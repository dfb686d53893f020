"""A `parent_event_id` must name a stored event: one query per batch, against the real table."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest

from audit.api.events.serializers import audit_event_validated, audit_events_validated
from audit.event_ids import event_id_new
from audit.selectors_events import events_existing
from testutils.events import (
    batch_errors,
    event_batch,
    event_body,
    event_errors,
    event_row_create,
)

pytestmark = pytest.mark.django_db


def test_the_selector_answers_which_ids_are_stored(django_assert_num_queries):
    stored = [event_row_create().event_id for _ in range(3)]
    unknown = event_id_new()
    with django_assert_num_queries(1):
        assert events_existing(event_ids=[*stored, unknown]) == set(stored)


def test_the_selector_asks_nothing_for_no_ids(django_assert_num_queries):
    with django_assert_num_queries(0):
        assert events_existing(event_ids=[]) == set()


def test_the_selector_finds_events_of_any_month():
    next_month = dt.datetime.now(dt.UTC).replace(day=1) + dt.timedelta(days=32)
    later = event_row_create(recorded_at=next_month)
    assert events_existing(event_ids=[later.event_id]) == {later.event_id}


def test_an_event_whose_parent_is_stored_is_valid():
    parent = event_row_create()
    validated = audit_event_validated(
        data=event_body(parent_event_id=str(parent.event_id).upper()), now=dt.datetime.now(dt.UTC)
    )
    assert validated.parent_event_id == parent.event_id


def test_an_unknown_parent_is_refused_by_name():
    assert event_errors(event_body(parent_event_id=str(uuid.uuid4()))) == {"parent_event_id": ["not_found"]}


def test_a_batch_checks_all_its_parents_in_one_query(django_assert_num_queries):
    parents = [event_row_create().event_id for _ in range(3)]
    batch = event_batch(["gateway.crd.created"] * 6)
    for index, parent in enumerate(parents):
        batch[index]["parent_event_id"] = str(parent)
    batch[4]["parent_event_id"] = str(uuid.uuid4())
    with django_assert_num_queries(1):
        assert batch_errors(batch) == {"[4].parent_event_id": ["not_found"]}
    batch[4]["parent_event_id"] = str(parents[0])
    with django_assert_num_queries(1):
        assert len(audit_events_validated(data=batch, now=dt.datetime.now(dt.UTC))) == 6


def test_a_batch_without_parents_asks_nothing(django_assert_num_queries):
    with django_assert_num_queries(0):
        audit_events_validated(data=event_batch(["gateway.crd.created"] * 3), now=dt.datetime.now(dt.UTC))


def test_missing_parents_are_listed_with_the_other_errors_in_input_order():
    batch = event_batch(["gateway.crd.created"] * 3)
    batch[2]["parent_event_id"] = str(uuid.uuid4())
    batch[0]["version"] = ""
    batch[1]["event_outcome"] = "done"
    assert list(batch_errors(batch)) == ["[0].version", "[1].event_outcome", "[2].parent_event_id"]
