"""`event_timestamp` and `parent_event_date`: RFC 3339 as the document's `date-time` means it,
and the event's time within 7 days before and 60 minutes after the server's."""

from __future__ import annotations

import datetime as dt

import pytest

from audit.api.events.serializers import audit_event_validated
from testutils.events import event_body, event_errors

NOW = dt.datetime(2026, 6, 15, 12, 0, 0, tzinfo=dt.UTC)


def _body(**fields):
    return event_body(**{"event_timestamp": "2026-06-15T12:00:00Z", **fields})


def _timestamp(text: str, field: str = "event_timestamp") -> dt.datetime:
    return audit_event_validated(data=_body(**{field: text}), now=NOW).columns[field]


def test_whole_seconds_as_upstreams_go_client_sends_them():
    assert _timestamp("2026-06-15T11:59:00Z") == dt.datetime(2026, 6, 15, 11, 59, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("text", "microsecond"),
    [
        ("2026-06-15T11:59:00.5Z", 500_000),
        ("2026-06-15T11:59:00.123Z", 123_000),
        ("2026-06-15T11:59:00.123456Z", 123_456),
        ("2026-06-15T11:59:00.123456789Z", 123_456),
        # RFC 3339 bounds no fraction; digits past microseconds are dropped, not rounded.
        ("2026-06-15T11:59:00.123456999999999Z", 123_456),
    ],
)
def test_fractional_seconds_of_any_length(text, microsecond):
    assert _timestamp(text) == dt.datetime(2026, 6, 15, 11, 59, 0, microsecond, tzinfo=dt.UTC)


def test_offsets_and_lowercase_separators():
    assert _timestamp("2026-06-15T13:59:00+02:00") == dt.datetime(2026, 6, 15, 11, 59, tzinfo=dt.UTC)
    assert _timestamp("2026-06-15t11:59:00z") == dt.datetime(2026, 6, 15, 11, 59, tzinfo=dt.UTC)
    assert _timestamp("2026-06-15T11:59:00-00:00") == dt.datetime(2026, 6, 15, 11, 59, tzinfo=dt.UTC)


def test_a_leap_second_is_the_last_microsecond_of_the_second_before():
    assert _timestamp("2026-06-15T11:59:60Z") == dt.datetime(2026, 6, 15, 11, 59, 59, 999_999, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    "text",
    [
        "2026-06-15T11:59:00",  # no offset: ambiguous
        "2026-06-15 11:59:00Z",  # JSON Schema's date-time takes T only
        "2026-06-15",
        "2026-02-30T11:59:00Z",
        "2026-06-15T24:00:00Z",
        "2026-06-15T11:59:00+24:00",
        "2026-06-15T11:59:00.Z",
        "1718452740",
        "",
    ],
)
def test_what_is_not_rfc_3339_is_refused(text):
    assert event_errors(_body(event_timestamp=text), now=NOW) == {"event_timestamp": ["invalid"]}
    assert event_errors(_body(parent_event_date=text), now=NOW) == {"parent_event_date": ["invalid"]}


def test_a_number_is_not_a_timestamp():
    assert event_errors(_body(event_timestamp=1718452740), now=NOW) == {"event_timestamp": ["invalid"]}


def test_the_window_includes_its_edges_to_the_microsecond():
    oldest = NOW - dt.timedelta(days=7)
    newest = NOW + dt.timedelta(minutes=60)
    assert _timestamp("2026-06-08T12:00:00Z") == oldest
    assert _timestamp("2026-06-15T13:00:00Z") == newest
    assert event_errors(_body(event_timestamp="2026-06-08T11:59:59.999999Z"), now=NOW) == {
        "event_timestamp": ["too_old"]
    }
    assert event_errors(_body(event_timestamp="2026-06-15T13:00:00.000001Z"), now=NOW) == {
        "event_timestamp": ["in_future"]
    }


def test_the_window_moves_with_the_servers_time():
    body = _body(event_timestamp="2026-06-01T00:00:00Z")
    assert event_errors(body, now=NOW) == {"event_timestamp": ["too_old"]}
    assert event_errors(body, now=dt.datetime(2026, 6, 2, tzinfo=dt.UTC)) == {}


def test_the_window_is_checked_even_when_other_fields_are_invalid():
    body = _body(event_timestamp="2020-01-01T00:00:00Z", version="")
    assert event_errors(body, now=NOW) == {"version": ["blank"], "event_timestamp": ["too_old"]}


def test_parent_event_date_has_no_window():
    assert _timestamp("2016-01-01T00:00:00Z", "parent_event_date") == dt.datetime(2016, 1, 1, tzinfo=dt.UTC)
