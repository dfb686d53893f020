"""Fields of upstream's `AuditEventRequest`, as lenient as its document and no more.

The typed records' fields (audit/api/fields.py) refuse control characters and bound every string
because their contract is ours. Here the contract is upstream's: a string the document leaves
unbounded is unbounded, any character is allowed except U+0000, which PostgreSQL cannot store in
text or jsonb. Each field still accepts exactly one JSON type (no `"12"` for 12), as the
document's types say.

Numbers may arrive as Decimal (audit/api/events/encoding.py keeps them exact), so the integer
field takes an integral Decimal as it takes an integral float.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from rest_framework import serializers
from rest_framework.exceptions import ErrorDetail

from audit.api.events.encoding import EventJSONError, event_json_dumps
from audit.api.fields import DocumentedField, JSONSchema, RFC3339DateTimeField, StrictIntegerField
from audit.event_types import EVENT_TYPES

#: `event_data` serialized (compact JSON, UTF-8, numbers as sent) may hold 256 KiB. Upstream
#: states "256 KB" without saying how it measures: the binary reading is the larger one.
EVENT_DATA_MAX_BYTES = 256 * 1024
#: Objects and arrays nested inside `event_data` (its own object not counted): `{"a": 1}` nests
#: 0 deep, `{"a": {"b": 1}}` 1 deep. Upstream states "nested at most 10 deep".
EVENT_DATA_MAX_NESTING = 10
#: The document's integers have no bounds; these are what a bigint column holds, and what the
#: Go clients' 64-bit integers can send.
INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1

_NUL = "\x00"
_NUL_ESCAPED = b"\\u0000"
#: RFC 3339 `date-time`: any number of fraction digits, second 60 (a leap second), and an
#: offset that may not be left out.
_DATE_TIME = re.compile(
    r"^(?P<date>\d{4}-\d{2}-\d{2})[Tt](?P<hms>\d{2}:\d{2}):(?P<second>\d{2})(?P<fraction>\.\d+)?"
    r"(?P<offset>[Zz]|[+-]\d{2}:\d{2})$"
)
_DATE_TIME_PATTERN = r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$"
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
NUL_MESSAGE = "Must not contain U+0000: PostgreSQL cannot store it."


class DocumentStringField(DocumentedField, serializers.Field):
    """A JSON string of any characters but U+0000, optionally bounded in length (characters)."""

    default_error_messages = {
        "invalid": "Must be a string.",
        "blank": "Must not be empty.",
        "max_length": "Must be at most {max_length} characters.",
        "nul_character": NUL_MESSAGE,
    }

    def __init__(self, *, allow_blank: bool = True, max_length: int | None = None, **kwargs: Any) -> None:
        self.allow_blank = allow_blank
        self.max_length = max_length
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        if not data and not self.allow_blank:
            self.fail("blank")
        if self.max_length is not None and len(data) > self.max_length:
            self.fail("max_length", max_length=self.max_length)
        if _NUL in data:
            self.fail("nul_character")
        if not data.isascii():
            _utf8_check(self, data)
        return data

    def to_representation(self, value: str) -> str:
        return value

    def openapi_schema(self) -> JSONSchema:
        schema: JSONSchema = {"type": "string", "pattern": "^[^\\u0000]*$"}
        if not self.allow_blank:
            schema["minLength"] = 1
        if self.max_length is not None:
            schema["maxLength"] = self.max_length
        return schema


def _utf8_check(field: serializers.Field, text: str) -> None:
    # A lone surrogate: orjson refuses one in a body, but the serializer may be given other data.
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise serializers.ValidationError(
            ErrorDetail("Must be valid UTF-8 (no lone surrogates).", code="invalid")
        ) from None


class DocumentChoiceField(DocumentedField, serializers.Field):
    """One of a fixed set of strings (the document's enums)."""

    default_error_messages = {"invalid_choice": "Must be one of: {choices}."}

    def __init__(self, *, choices: list[str], **kwargs: Any) -> None:
        self.choices = choices
        self._allowed = frozenset(choices)
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str) or data not in self._allowed:
            self.fail("invalid_choice", choices=", ".join(self.choices))
        return data

    def to_representation(self, value: str) -> str:
        return value

    def openapi_schema(self) -> JSONSchema:
        return {"type": "string", "enum": list(self.choices)}


class DocumentIntegerField(StrictIntegerField):
    """A JSON integer within 64 bits; `2.0` is the integer 2, as JSON Schema has it."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(min_value=INT64_MIN, max_value=INT64_MAX, **kwargs)

    def to_internal_value(self, data: Any) -> int:
        if isinstance(data, Decimal) and data.is_finite() and data == data.to_integral_value():
            data = int(data)
        return super().to_internal_value(data)


class UUIDStringField(DocumentedField, serializers.Field):
    """`format: uuid`: the 8-4-4-4-12 hexadecimal form, either case."""

    default_error_messages = {"invalid": "Must be a UUID (8-4-4-4-12 hexadecimal digits)."}

    def to_internal_value(self, data: Any) -> uuid.UUID:
        if not isinstance(data, str) or not _UUID.match(data):
            self.fail("invalid")
        return uuid.UUID(data)

    def to_representation(self, value: uuid.UUID) -> str:
        return str(value)

    def openapi_schema(self) -> JSONSchema:
        return {"type": "string", "format": "uuid", "pattern": _UUID.pattern}


class EventDateTimeField(RFC3339DateTimeField):
    """RFC 3339 `date-time` as the document's `format: date-time` means it.

    Wider than the typed records' timestamps in two ways RFC 3339 allows: any number of fraction
    digits (PostgreSQL keeps microseconds; further digits are dropped, not rounded) and a leap
    second (`23:59:60`, kept as the last microsecond of the second before it, which sorts it
    correctly).
    """

    def to_internal_value(self, data: Any) -> dt.datetime:
        match = _DATE_TIME.match(data) if isinstance(data, str) else None
        if match is None:
            self.fail("invalid")
        leap = match["second"] == "60"
        fraction = (match["fraction"] or "")[:7]
        offset = match["offset"].upper().replace("Z", "+00:00")
        text = f"{match['date']}T{match['hms']}:{'59' if leap else match['second']}{fraction}{offset}"
        try:
            moment = dt.datetime.fromisoformat(text)
        except ValueError:
            self.fail("invalid")
        return moment.replace(microsecond=999_999) if leap else moment

    def openapi_schema(self) -> JSONSchema:
        return {"type": "string", "format": "date-time", "pattern": _DATE_TIME_PATTERN}


@dataclass(frozen=True, slots=True)
class EventData:
    """A valid `event_data`: the value as parsed and its compact JSON, which the size was
    measured on and which the write path stores."""

    value: dict[str, Any]
    json: bytes

    @property
    def event_type(self) -> str:
        event_type: str = self.value["event_type"]
        return event_type


class EventDataField(DocumentedField, serializers.Field):
    """`event_data`: a JSON object naming one of the known event types in its own `event_type`
    (the document's discriminator), at most EVENT_DATA_MAX_BYTES serialized and
    EVENT_DATA_MAX_NESTING deep. Nothing else in it is checked: the payload is stored as
    received, including keys the document's payload schemas do not name.

    Problems of the discriminator are reported at `event_data.event_type`, the others at
    `event_data`; every problem found is reported.
    """

    default_error_messages = {"invalid": "Must be a JSON object."}

    def to_internal_value(self, data: Any) -> EventData:
        if not isinstance(data, dict):
            self.fail("invalid")
        errors: dict[str, list[ErrorDetail]] = {}
        discriminator = _discriminator_error(data)
        if discriminator is not None:
            errors["event_type"] = [discriminator]
        problems: list[ErrorDetail] = []
        try:
            encoded = event_json_dumps(data)
        except EventJSONError as exc:
            problems.append(ErrorDetail(f"Must be JSON data: {exc}.", code="invalid"))
        else:
            problems += _bounds_errors(data, encoded)
        if problems:
            errors["non_field_errors"] = problems
        if errors:
            raise serializers.ValidationError(errors)
        return EventData(value=data, json=encoded)

    def to_representation(self, value: Any) -> Any:
        return value

    def openapi_schema(self) -> JSONSchema:
        return {
            "type": "object",
            "required": ["event_type"],
            "properties": {"event_type": {"type": "string", "enum": sorted(EVENT_TYPES)}},
            "description": "The event's payload, stored as received. Its `event_type` names one of the known "
            f"event types and equals the event's own `event_type`. At most {EVENT_DATA_MAX_BYTES} bytes as "
            f"compact JSON; objects and arrays nested at most {EVENT_DATA_MAX_NESTING} deep inside it.",
        }


def _discriminator_error(data: dict[str, Any]) -> ErrorDetail | None:
    if "event_type" not in data:
        return ErrorDetail("This field is required: it names the event's type.", code="required")
    value = data["event_type"]
    if not isinstance(value, str) or value not in EVENT_TYPES:
        return ErrorDetail(
            "Must be one of the event types of upstream's API document.",
            code="unknown_event_type",
        )
    return None


def _bounds_errors(data: dict[str, Any], encoded: bytes) -> list[ErrorDetail]:
    errors = []
    if len(encoded) > EVENT_DATA_MAX_BYTES:
        errors.append(
            ErrorDetail(
                f"Must be at most {EVENT_DATA_MAX_BYTES} bytes as compact JSON; it is {len(encoded)}.",
                code="too_large",
            )
        )
    # Both checks walk the payload only when its bytes say they might fail: with no more
    # brackets than the nesting allows it cannot be too deep (brackets inside strings only add
    # to the count), and a NUL is always written escaped.
    brackets = encoded.count(b"{") + encoded.count(b"[")
    check_depth = brackets > EVENT_DATA_MAX_NESTING + 1
    check_nul = _NUL_ESCAPED in encoded
    if check_depth or check_nul:
        too_deep, has_nul = json_value_problems(data, max_nesting=EVENT_DATA_MAX_NESTING)
        if too_deep and check_depth:
            errors.append(
                ErrorDetail(
                    f"Must nest objects and arrays at most {EVENT_DATA_MAX_NESTING} deep inside event_data.",
                    code="too_deep",
                )
            )
        if has_nul and check_nul:
            errors.append(ErrorDetail(NUL_MESSAGE, code="nul_character"))
    return errors


def json_value_problems(value: Any, *, max_nesting: int | None) -> tuple[bool, bool]:
    """(nested deeper than `max_nesting` below `value`, a key or string holds U+0000).

    Iterative: a hostile depth must not cost recursion. `value` itself is at nesting 0.
    """
    too_deep = has_nul = False
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        node, nesting = stack.pop()
        if isinstance(node, dict):
            if max_nesting is not None and nesting > max_nesting:
                too_deep = True
            for key, child in node.items():
                if _NUL in key:
                    has_nul = True
                stack.append((child, nesting + 1))
        elif isinstance(node, list):
            if max_nesting is not None and nesting > max_nesting:
                too_deep = True
            stack.extend((child, nesting + 1) for child in node)
        elif isinstance(node, str) and _NUL in node:
            has_nul = True
        if too_deep and has_nul:
            break
    return too_deep, has_nul
