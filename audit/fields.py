"""Strict DRF fields for the audit contract.

DRF's stock fields are lenient by design (`"12"` is an integer, `"yes"` a boolean, a naive
timestamp is taken in the server's zone); an audit trail must store what the caller meant, so
these accept exactly one JSON type each and nothing that PostgreSQL could not store verbatim.
"""

from __future__ import annotations

import binascii
import datetime as dt
import math
import re
from typing import Any

from rest_framework import serializers

# C0 controls except \t and \n, DEL and the C1 block. \r is refused too: a record's text must
# not be able to forge line structure in logs or exports.
_CONTROL_EXCEPT_TAB_NEWLINE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_ANY_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_RFC3339 = re.compile(
    r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(?P<fraction>\.\d{1,9})?(?P<offset>[Zz]|[+-]\d{2}:\d{2})?$"
)
DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


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


class StrictCharField(serializers.CharField):
    """A JSON string, kept exactly as sent; `max_bytes` bounds its UTF-8 size."""

    default_error_messages = {
        "invalid": "Must be a string.",
        "control_character": "{reason}",
        "too_large": "Must be at most {max_bytes} bytes of UTF-8.",
    }

    def __init__(self, *, multiline: bool = False, max_bytes: int | None = None, **kwargs: Any) -> None:
        kwargs.setdefault("trim_whitespace", False)
        self.multiline = multiline
        self.max_bytes = max_bytes
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        reason = string_problem(data, multiline=self.multiline)
        if reason:
            self.fail("control_character", reason=reason)
        if self.max_bytes is not None and len(data.encode("utf-8")) > self.max_bytes:
            self.fail("too_large", max_bytes=self.max_bytes)
        return data


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


def dns_subdomain_field(**kwargs: Any) -> PatternField:
    return PatternField(
        pattern=DNS1123_SUBDOMAIN,
        description="Must be a Kubernetes object name (DNS-1123 subdomain: lowercase a-z, 0-9, '-' and '.').",
        max_length=253,
        **kwargs,
    )


def dns_label_field(**kwargs: Any) -> PatternField:
    return PatternField(
        pattern=DNS1123_LABEL,
        description="Must be a Kubernetes namespace (DNS-1123 label: lowercase a-z, 0-9 and '-').",
        max_length=63,
        **kwargs,
    )


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
    default_error_messages = {"invalid": "Must be an integer."}

    def to_internal_value(self, data: Any) -> int:
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        return data


class StrictFloatField(serializers.FloatField):
    default_error_messages = {"invalid": "Must be a finite number."}

    def to_internal_value(self, data: Any) -> float:
        if isinstance(data, bool) or not isinstance(data, int | float) or not math.isfinite(data):
            self.fail("invalid")
        return float(data)


class RFC3339DateTimeField(serializers.Field):
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


class StringMapField(serializers.Field):
    """A JSON object of string to string, bounded in entries and sizes."""

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
        max_key_bytes: int,
        max_value_bytes: int,
        key_pattern: re.Pattern[str] | None = None,
        value_pattern: re.Pattern[str] | None = None,
        multiline_values: bool = False,
        **kwargs: Any,
    ) -> None:
        self.max_entries = max_entries
        self.max_key_bytes = max_key_bytes
        self.max_value_bytes = max_value_bytes
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
            reason = self._problem(key, self.max_key_bytes, self.key_pattern, multiline=False)
            if reason:
                self.fail("bad_key", entry=key[:64], reason=reason)
            reason = self._problem(value, self.max_value_bytes, self.value_pattern, multiline=self.multiline_values)
            if reason:
                self.fail("bad_value", entry=key[:64], reason=reason)
        return dict(data)

    @staticmethod
    def _problem(text: str, max_bytes: int, pattern: re.Pattern[str] | None, *, multiline: bool) -> str | None:
        reason = string_problem(text, multiline=multiline)
        if reason:
            return reason
        if len(text.encode("utf-8")) > max_bytes:
            return f"must be at most {max_bytes} bytes."
        if pattern is not None and not pattern.match(text):
            return "has characters or a form that is not allowed."
        return None

    def to_representation(self, value: dict[str, str]) -> dict[str, str]:
        return value


def kubernetes_labels_field(**kwargs: Any) -> StringMapField:
    """Kubernetes labels: keys `[prefix/]name`, values ≤ 63 — what the API server itself accepts."""
    return StringMapField(
        max_entries=64,
        max_key_bytes=317,
        max_value_bytes=63,
        key_pattern=re.compile(
            r"^(([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*)/)?"
            r"([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9]$"
        ),
        value_pattern=re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$"),
        **kwargs,
    )


class BoundedJSONObjectField(serializers.Field):
    """A free-form JSON object (e.g. `signalContext`) bounded in depth, size and content."""

    default_error_messages = {
        "invalid": "Must be a JSON object.",
        "too_deep": "Must nest at most {max_depth} levels.",
        "too_many": "Must hold at most {max_items} keys and items in all.",
        "bad_string": "{reason}",
        "too_long": "Strings must be at most {max_string_bytes} bytes.",
    }

    def __init__(self, *, max_depth: int = 6, max_items: int = 512, max_string_bytes: int = 8192, **kwargs: Any):
        self.max_depth = max_depth
        self.max_items = max_items
        self.max_string_bytes = max_string_bytes
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> dict[str, Any]:
        if not isinstance(data, dict):
            self.fail("invalid")
        # Iterative walk: a hostile nesting depth must not cost recursion.
        seen = 0
        stack: list[tuple[Any, int]] = [(data, 1)]
        while stack:
            node, depth = stack.pop()
            if isinstance(node, dict | list):
                if depth > self.max_depth:
                    self.fail("too_deep", max_depth=self.max_depth)
                seen += len(node)
                if seen > self.max_items:
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
        if len(text.encode("utf-8")) > self.max_string_bytes:
            self.fail("too_long", max_string_bytes=self.max_string_bytes)

    def to_representation(self, value: dict[str, Any]) -> dict[str, Any]:
        return value


class Base64Field(StrictCharField):
    """Standard base64 (RFC 4648 §4), validated strictly, bounded in its encoded size."""

    default_error_messages = {"base64": "Must be standard base64."}

    def to_internal_value(self, data: Any) -> str:
        value = super().to_internal_value(data)
        try:
            binascii.a2b_base64(value, strict_mode=True)
        except (binascii.Error, ValueError):
            self.fail("base64")
        return value
