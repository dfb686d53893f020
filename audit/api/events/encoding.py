"""JSON for audit events, with every number kept as the caller wrote it.

The service's parser (orjson, kubernaut_storage/http/parsers.py) reads a JSON number as an int
of at most 64 bits or as a double: `1.10` comes back as `1.1`, `1e2` as `100.0`, an integer past
64 bits as a rounded float, a decimal of more than 17 digits rounded. For the typed records that
is what their columns hold anyway; `event_data` is stored as received, so its numbers must not
change on the way.

`event_json_loads` accepts a body exactly when orjson does (strict RFC 8259: UTF-8, no lone
surrogate, no NaN or Infinity, no number beyond a double's range) and then reads it a second
time with the standard library, keeping each number that is not a 64-bit integer as the
Decimal of its digits. `event_json_dumps` writes such a value back with those digits. So the
jsonb PostgreSQL stores from the bytes `event_json_dumps` gives is the jsonb it would store from
the caller's own text: the same keys (the last of duplicates, as jsonb keeps), the same strings
and the same numbers to the last digit. Key order and whitespace are not kept; jsonb keeps
neither.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import orjson

# What orjson writes as an integer; anything wider becomes a Decimal, written with its digits.
_INT_MIN = -(2**63)
_UINT_MAX = 2**64 - 1
# At most 20 digits (and a sign) can be within the range above; longer ones skip int(), which
# also refuses more than 4300 digits.
_INT_DIGITS_MAX = 21


class EventJSONError(ValueError):
    """The body is not JSON the service accepts."""


def _integer(text: str) -> int | Decimal:
    if len(text) <= _INT_DIGITS_MAX:
        value = int(text)
        if _INT_MIN <= value <= _UINT_MAX:
            return value
    return Decimal(text)


def event_json_loads(raw: bytes) -> Any:
    """The JSON value of `raw`, numbers exact (see the module's docstring)."""
    try:
        orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise EventJSONError(f"Malformed JSON: {exc}") from exc
    # orjson has checked the bytes: they decode as UTF-8 and parse the same way here.
    return json.loads(raw.decode("utf-8"), parse_float=Decimal, parse_int=_integer)


def _number_fragment(value: Any) -> orjson.Fragment:
    if isinstance(value, Decimal):
        return orjson.Fragment(str(value).encode("ascii"))
    raise TypeError(f"{type(value).__name__} is not JSON")


def event_json_dumps(value: Any) -> bytes:
    """Compact JSON in UTF-8; a Decimal is written with the digits it was read from.

    Raises EventJSONError for what JSON cannot hold (a lone surrogate, an object that is not
    JSON data). Values read from JSON are always JSON data.
    """
    try:
        return orjson.dumps(value, default=_number_fragment)
    except orjson.JSONEncodeError as exc:
        raise EventJSONError(str(exc)) from exc
