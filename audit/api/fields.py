"""Strict DRF fields for the audit contract.

DRF's stock fields are lenient by design (`"12"` is an integer, `"yes"` a boolean, a naive
timestamp is taken in the server's zone); an audit trail must store what the caller meant, so
these accept exactly one JSON type each and nothing that PostgreSQL could not store verbatim.

Each field also states, as JSON Schema, exactly what it accepts (`openapi_schema`): the OpenAPI
document is built from the same attributes the validation uses (audit/api/openapi.py).
"""

from __future__ import annotations

import binascii
import datetime as dt
import math
import re
from typing import Any

from rest_framework import serializers

from audit import limits

# C0 controls except \t and \n, DEL and the C1 block. \r is refused too: a record's text must
# not be able to forge line structure in logs or exports.
_MULTILINE_CONTROLS = r"\x00-\x08\x0b-\x1f\x7f-\x9f"
_SINGLE_LINE_CONTROLS = r"\x00-\x1f\x7f-\x9f"
_CONTROL_EXCEPT_TAB_NEWLINE = re.compile(f"[{_MULTILINE_CONTROLS}]")
_ANY_CONTROL = re.compile(f"[{_SINGLE_LINE_CONTROLS}]")
#: The same rules as JSON Schema patterns (ECMA-262 syntax).
MULTILINE_TEXT_PATTERN = f"^[^{_MULTILINE_CONTROLS}]*$"
SINGLE_LINE_TEXT_PATTERN = f"^[^{_SINGLE_LINE_CONTROLS}]*$"
_RFC3339 = re.compile(
    r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(?P<fraction>\.\d{1,9})?(?P<offset>[Zz]|[+-]\d{2}:\d{2})?$"
)
#: What `_RFC3339` accepts once the offset is required, without Python's named groups.
RFC3339_PATTERN = r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$"
#: Standard, padded base64 as `binascii.a2b_base64(strict_mode=True)` takes it.
BASE64_PATTERN = r"^([A-Za-z0-9+/]{4})*([A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$"
DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")

JSONSchema = dict[str, Any]


def text_pattern(*, multiline: bool) -> str:
    return MULTILINE_TEXT_PATTERN if multiline else SINGLE_LINE_TEXT_PATTERN


def string_problem(value: str, *, multiline: bool) -> str | None:
    """Why `value` cannot be stored verbatim, or None."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "Must be valid UTF-8 (no lone surrogates)."
    pattern = _CONTROL_EXCEPT_TAB_NEWLINE if multiline else _ANY_CONTROL
    if pattern.search(value):
        allowed = " other than newline and tab" if multiline else ""
        return f"Must not contain NUL or control characters{allowed}."
    return None


class DocumentedField:
    """A field that describes itself in the OpenAPI document (audit/api/openapi.py)."""

    def openapi_schema(self) -> JSONSchema:
        raise NotImplementedError


class StrictCharField(DocumentedField, serializers.CharField):
    """A JSON string, kept exactly as sent; `max_length` counts characters, as the column does."""

    default_error_messages = {
        "invalid": "Must be a string.",
        "control_character": "{reason}",
    }

    def __init__(self, *, multiline: bool = False, **kwargs: Any) -> None:
        kwargs.setdefault("trim_whitespace", False)
        self.multiline = multiline
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        reason = string_problem(data, multiline=self.multiline)
        if reason:
            self.fail("control_character", reason=reason)
        return data

    def openapi_schema(self) -> JSONSchema:
        schema: JSONSchema = {"type": "string", "pattern": self.schema_pattern()}
        if not self.allow_blank:
            schema["minLength"] = 1
        if self.max_length is not None:
            schema["maxLength"] = self.max_length
        return schema

    def schema_pattern(self) -> str:
        return text_pattern(multiline=self.multiline)


class PatternField(StrictCharField):
    """A single-line string matching `pattern` (Kubernetes names, ids, enums of open sets)."""

    default_error_messages = {"pattern": "{description}"}

    def __init__(self, *, pattern: re.Pattern[str], description: str, **kwargs: Any) -> None:
        self.pattern = pattern
        self.description = description
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> str:
        value = super().to_internal_value(data)
        if not self.pattern.match(value):
            self.fail("pattern", description=self.description)
        return value

    def schema_pattern(self) -> str:
        return self.pattern.pattern


def dns_subdomain_field(**kwargs: Any) -> PatternField:
    return PatternField(
        pattern=DNS1123_SUBDOMAIN,
        description="Must be a Kubernetes object name (DNS-1123 subdomain: lowercase a-z, 0-9, '-' and '.').",
        max_length=limits.K8S_NAME_LENGTH,
        **kwargs,
    )


def dns_label_field(**kwargs: Any) -> PatternField:
    return PatternField(
        pattern=DNS1123_LABEL,
        description="Must be a Kubernetes namespace (DNS-1123 label: lowercase a-z, 0-9 and '-').",
        max_length=limits.K8S_NAMESPACE_LENGTH,
        **kwargs,
    )


class LengthFirstListField(serializers.ListField):
    """A list refused for its length before its items are validated.

    DRF validates every item, then the length: 340,000 invalid items in a 680 KB body made as
    many errors, a 29 MB answer and 11 CPU-seconds.
    """

    def to_internal_value(self, data: Any) -> list[Any]:
        if self.max_length is not None and isinstance(data, list) and len(data) > self.max_length:
            self.fail("max_length", max_length=self.max_length)
        return list(super().to_internal_value(data))


class StrictChoiceField(serializers.ChoiceField):
    default_error_messages = {"invalid_choice": "Must be one of: {choices}."}

    def to_internal_value(self, data: Any) -> Any:
        if not isinstance(data, str) or data not in self.choice_strings_to_values:
            self.fail("invalid_choice", choices=", ".join(self.choice_strings_to_values))
        return self.choice_strings_to_values[data]


class StrictBooleanField(serializers.BooleanField):
    default_error_messages = {"invalid": "Must be true or false."}

    def to_internal_value(self, data: Any) -> bool:
        if not isinstance(data, bool):
            self.fail("invalid")
        return data


class StrictIntegerField(serializers.IntegerField):
    """A JSON integer. As in JSON Schema, `2.0` is the integer 2; `"2"`, `true` and `2.5` are not."""

    default_error_messages = {"invalid": "Must be an integer."}

    def to_internal_value(self, data: Any) -> int:
        if isinstance(data, float) and data.is_integer():
            data = int(data)
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        return data


class StrictFloatField(serializers.FloatField):
    default_error_messages = {"invalid": "Must be a finite number."}

    def to_internal_value(self, data: Any) -> float:
        if isinstance(data, bool) or not isinstance(data, int | float) or not math.isfinite(data):
            self.fail("invalid")
        return float(data)


class RFC3339DateTimeField(DocumentedField, serializers.Field):
    """An RFC 3339 timestamp with an explicit offset; naive timestamps are refused."""

    default_error_messages = {
        "invalid": "Must be an RFC 3339 timestamp, e.g. 2026-01-31T12:00:00Z.",
        "naive": "Must carry a UTC offset (Z or ±hh:mm): naive timestamps are ambiguous.",
    }

    def to_internal_value(self, data: Any) -> dt.datetime:
        match = _RFC3339.match(data) if isinstance(data, str) else None
        if match is None:
            self.fail("invalid")
        if match["offset"] is None:
            self.fail("naive")
        text = data.upper().replace("Z", "+00:00")
        fraction = match["fraction"]
        if fraction and len(fraction) > 7:
            # Python keeps microseconds; nanosecond digits beyond them are dropped, not rounded.
            text = text.replace(fraction, fraction[:7])
        try:
            return dt.datetime.fromisoformat(text)
        except ValueError:
            self.fail("invalid")

    def to_representation(self, value: dt.datetime) -> str:
        return value.isoformat()

    def openapi_schema(self) -> JSONSchema:
        return {"type": "string", "format": "date-time", "pattern": RFC3339_PATTERN}


class StringMapField(DocumentedField, serializers.Field):
    """A JSON object of string to string, bounded in entries and lengths."""

    default_error_messages = {
        "invalid": "Must be an object of string keys to string values.",
        "too_many": "Must have at most {max_entries} entries.",
        "bad_key": "Key {entry!r}: {reason}",
        "bad_value": "Value of {entry!r}: {reason}",
    }

    def __init__(
        self,
        *,
        max_entries: int,
        max_key_length: int,
        max_value_length: int,
        key_pattern: re.Pattern[str] | None = None,
        value_pattern: re.Pattern[str] | None = None,
        multiline_values: bool = False,
        **kwargs: Any,
    ) -> None:
        self.max_entries = max_entries
        self.max_key_length = max_key_length
        self.max_value_length = max_value_length
        self.key_pattern = key_pattern
        self.value_pattern = value_pattern
        self.multiline_values = multiline_values
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> dict[str, str]:
        if not isinstance(data, dict):
            self.fail("invalid")
        if len(data) > self.max_entries:
            self.fail("too_many", max_entries=self.max_entries)
        for key, value in data.items():
            if not isinstance(value, str):
                self.fail("bad_value", entry=key[:64], reason="must be a string.")
            reason = self._problem(key, self.max_key_length, self.key_pattern, multiline=False)
            if reason:
                self.fail("bad_key", entry=key[:64], reason=reason)
            reason = self._problem(value, self.max_value_length, self.value_pattern, multiline=self.multiline_values)
            if reason:
                self.fail("bad_value", entry=key[:64], reason=reason)
        return dict(data)

    @staticmethod
    def _problem(text: str, max_length: int, pattern: re.Pattern[str] | None, *, multiline: bool) -> str | None:
        reason = string_problem(text, multiline=multiline)
        if reason:
            return reason
        if len(text) > max_length:
            return f"must be at most {max_length} characters."
        if pattern is not None and not pattern.match(text):
            return "has characters or a form that is not allowed."
        return None

    def to_representation(self, value: dict[str, str]) -> dict[str, str]:
        return value

    def openapi_schema(self) -> JSONSchema:
        key_pattern = self.key_pattern.pattern if self.key_pattern else text_pattern(multiline=False)
        value_pattern = (
            self.value_pattern.pattern if self.value_pattern else text_pattern(multiline=self.multiline_values)
        )
        return {
            "type": "object",
            "maxProperties": self.max_entries,
            "propertyNames": {"type": "string", "maxLength": self.max_key_length, "pattern": key_pattern},
            "additionalProperties": {"type": "string", "maxLength": self.max_value_length, "pattern": value_pattern},
        }


def kubernetes_labels_field(**kwargs: Any) -> StringMapField:
    """Kubernetes labels: keys `[prefix/]name`, values ≤ 63 — what the API server itself accepts."""
    return StringMapField(
        max_entries=limits.LABELS_MAX_ENTRIES,
        max_key_length=limits.LABEL_KEY_LENGTH,
        max_value_length=limits.LABEL_VALUE_LENGTH,
        key_pattern=re.compile(
            r"^(([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*)/)?"
            r"([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9]$"
        ),
        value_pattern=re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$"),
        **kwargs,
    )


class BoundedJSONObjectField(DocumentedField, serializers.Field):
    """A free-form JSON object (e.g. `signalContext`) bounded in depth, in the size of each object
    and array, and in its strings. Every bound is one JSON Schema can state, so the published
    schema is exact; the body size limit (AUDIT_MAX_BODY_BYTES) bounds the whole."""

    default_error_messages = {
        "invalid": "Must be a JSON object.",
        "too_deep": "Must nest at most {max_depth} levels.",
        "too_many": "Each object and array must hold at most {max_items} keys or items.",
        "bad_string": "{reason}",
        "too_long": "Strings must be at most {max_string_length} characters.",
    }

    def __init__(self, *, max_depth: int, max_items: int, max_string_length: int, **kwargs: Any):
        self.max_depth = max_depth
        self.max_items = max_items
        self.max_string_length = max_string_length
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> dict[str, Any]:
        if not isinstance(data, dict):
            self.fail("invalid")
        # Iterative walk: a hostile nesting depth must not cost recursion.
        stack: list[tuple[Any, int]] = [(data, 1)]
        while stack:
            node, depth = stack.pop()
            if isinstance(node, dict | list):
                if depth > self.max_depth:
                    self.fail("too_deep", max_depth=self.max_depth)
                if len(node) > self.max_items:
                    self.fail("too_many", max_items=self.max_items)
                children = list(node.items()) if isinstance(node, dict) else [(None, v) for v in node]
                for key, value in children:
                    if key is not None:
                        self._check_string(key)
                    stack.append((value, depth + 1))
            elif isinstance(node, str):
                self._check_string(node)
            elif isinstance(node, float) and not math.isfinite(node):
                self.fail("invalid")
        return data

    def _check_string(self, text: str) -> None:
        reason = string_problem(text, multiline=True)
        if reason:
            self.fail("bad_string", reason=reason)
        if len(text) > self.max_string_length:
            self.fail("too_long", max_string_length=self.max_string_length)

    def to_representation(self, value: dict[str, Any]) -> dict[str, Any]:
        return value

    def openapi_schema(self) -> JSONSchema:
        """The depth limit spelled out level by level: JSON Schema has no depth keyword."""
        string = {"type": "string", "maxLength": self.max_string_length, "pattern": MULTILINE_TEXT_PATTERN}
        scalars: list[JSONSchema] = [{"type": "null"}, {"type": "boolean"}, {"type": "number"}, string]
        # The value nested at `max_depth + 1` may only be a scalar; each level up adds containers.
        value: JSONSchema = {"anyOf": scalars}
        for _ in range(self.max_depth - 1):
            value = {"anyOf": [*scalars, *self._containers(value, string)]}
        obj, _array = self._containers(value, string)
        return {
            **obj,
            "description": f"A JSON object nested at most {self.max_depth} levels deep; each object and array "
            f"holds at most {self.max_items} keys or items, each string at most {self.max_string_length} "
            "characters.",
        }

    def _containers(self, value: JSONSchema, string: JSONSchema) -> list[JSONSchema]:
        return [
            {
                "type": "object",
                "maxProperties": self.max_items,
                "propertyNames": string,
                "additionalProperties": value,
            },
            {"type": "array", "maxItems": self.max_items, "items": value},
        ]


class Base64Field(StrictCharField):
    """Standard base64 (RFC 4648 §4), validated strictly, bounded in its encoded length."""

    default_error_messages = {"base64": "Must be standard base64."}

    def to_internal_value(self, data: Any) -> str:
        value = super().to_internal_value(data)
        try:
            binascii.a2b_base64(value, strict_mode=True)
        except (binascii.Error, ValueError):
            self.fail("base64")
        return value

    def schema_pattern(self) -> str:
        return BASE64_PATTERN
