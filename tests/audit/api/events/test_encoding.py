"""JSON with exact numbers: what PostgreSQL stores from `event_json_dumps(event_json_loads(body))`
is what it would store from the caller's own text."""

from __future__ import annotations

import json
from decimal import Decimal

import orjson
import pytest
from django.db import connection

from audit.api.events.encoding import EventJSONError, event_json_dumps, event_json_loads

NUMBERS = [
    "0",
    "-0",
    "1",
    "1.0",
    "1.10",
    "-0.0",
    "1e2",
    "1E-7",
    "2.5e+300",
    "1e-400",
    "0.1",
    "3.141592653589793238462643383279",
    "9223372036854775807",
    "-9223372036854775808",
    "-9223372036854775809",
    "18446744073709551615",
    "18446744073709551616",
    "123456789012345678901234567890123456789",
]


def _jsonb_text(text: str) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT %s::jsonb::text", [text])
        return cursor.fetchone()[0]


@pytest.mark.parametrize("number", NUMBERS)
def test_numbers_keep_their_exact_value(number):
    written = event_json_dumps(event_json_loads(f"[{number}]".encode()))
    assert Decimal(written.decode()[1:-1]) == Decimal(number)
    if "e" not in number.lower() and number != "-0":
        assert written == f"[{number}]".encode()  # decimals keep even their trailing zeros


@pytest.mark.django_db
@pytest.mark.parametrize("number", NUMBERS)
def test_postgresql_stores_each_number_as_from_the_callers_own_text(number):
    raw = f'{{"n":{number}}}'
    assert _jsonb_text(event_json_dumps(event_json_loads(raw.encode())).decode()) == _jsonb_text(raw)


def test_the_services_parser_alone_would_change_them():
    # Why the events need their own reading: orjson rounds these.
    raw = b'{"a":1.10,"b":18446744073709551616,"c":3.141592653589793238462}'
    assert orjson.dumps(orjson.loads(raw)) != raw
    assert event_json_dumps(event_json_loads(raw)) == raw


@pytest.mark.django_db
def test_postgresql_stores_the_same_jsonb_as_from_the_callers_own_text():
    raw = (
        '{ "event_type" : "gateway.signal.received", "n": [1.10, 1e2, -0.0, 18446744073709551616,'
        ' 3.141592653589793238462643383279, 1E-7], "s": "\\u00e9\\n\\u2028 \\ud83d\\ude80", "dup": 1, "dup": 2,'
        ' "nested": {"z": null, "a": [true, false, {}]}}'
    )
    assert _jsonb_text(event_json_dumps(event_json_loads(raw.encode())).decode()) == _jsonb_text(raw)


@pytest.mark.parametrize(
    "raw",
    [b'{"a":NaN}', b'{"a":Infinity}', b'{"a":1e400}', b'{"a":"\\ud800"}', b'{"a":1,}', b"\xff", b'{"a":"\x01"}'],
)
def test_what_the_services_parser_refuses_is_refused(raw):
    with pytest.raises(EventJSONError):
        event_json_loads(raw)
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(raw)


def test_duplicate_keys_keep_the_last_as_jsonb_does():
    assert event_json_loads(b'{"a":1,"a":2}') == {"a": 2}


def test_what_is_not_json_data_cannot_be_written():
    with pytest.raises(EventJSONError):
        event_json_dumps({"a": "\ud800"})
    with pytest.raises(EventJSONError):
        event_json_dumps({"a": object()})
    assert json.loads(event_json_dumps({"a": [1, 2.5, None]})) == {"a": [1, 2.5, None]}
