"""Validation of upstream Kubernaut's `AuditEventRequest`: one event, or a batch of them.

Serializers validate; they never write. What upstream's API document allows is accepted:

- snake_case keys, the 8 required fields, the enums, the lengths, `null` where the document
  says `nullable` (and nowhere else);
- `cluster_name` (what upstream's v1.5 clients send) is read as `cluster_id` when `cluster_id`
  is absent or null; when both are given, `cluster_id` is the value and `cluster_name` is kept
  with the other unknown keys;
- top-level keys the document does not name are accepted and returned in `extra_fields`, as
  received, so that the write path stores them: a field a newer controller adds is kept, not
  dropped;
- `event_timestamp` within 7 days before and 60 minutes after the server's time (`now`);
- `event_data`: see EventDataField; its `event_type` must also equal the event's own;
- a `parent_event_id` must name a stored event (one query per batch).

Errors are data: every problem of every event, each named by its path in the body —
`[3].event_data.event_type` in a batch, `event_data.event_type` for a single event — with a
code and a message, in input order. EventsInvalid carries the first MAX_REPORTED_ERRORS of
them and the count of all.
"""

from __future__ import annotations

import datetime as dt
import threading
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from django.utils import timezone
from rest_framework import serializers
from rest_framework.exceptions import ErrorDetail
from rest_framework.fields import SkipField, empty

from audit.api.events.encoding import EventJSONError, event_json_dumps
from audit.api.events.fields import (
    NUL_MESSAGE,
    DocumentChoiceField,
    DocumentIntegerField,
    DocumentStringField,
    EventData,
    EventDataField,
    EventDateTimeField,
    UUIDStringField,
    json_value_problems,
)
from audit.api.fields import StrictBooleanField
from audit.event_types import (
    ACTOR_IP_LENGTH,
    CORRELATION_ID_LENGTH,
    EVENT_ACTION_LENGTH,
    EVENT_TYPE_LENGTH,
    EVENT_TYPES,
    VERSION_LENGTH,
    EventCategory,
    EventOutcome,
)
from audit.selectors_events import events_existing

#: Events in one batch. The endpoints read the limit from the AUDIT_EVENTS_BATCH_MAX setting
#: and pass it as `max_events`; this is that setting's default: upstream's busiest controllers
#: send batches of 1000.
AUDIT_EVENTS_BATCH_MAX = 1000
#: Errors listed in one answer; the count of all of them is given beside.
MAX_REPORTED_ERRORS = 100
#: The window of `event_timestamp` around the server's time, edges included.
EVENT_TIMESTAMP_MAX_AGE = dt.timedelta(days=7)
EVENT_TIMESTAMP_MAX_AHEAD = dt.timedelta(minutes=60)

#: Refusals of a body the OpenAPI document calls valid: rules JSON Schema cannot state (the
#: time window, the payload's type equal to the event's, a stored parent, the payload's size and
#: depth, NUL inside the open payload or unknown keys), which the document says in words.
EVENT_CROSS_FIELD_CODES = frozenset(
    {"too_old", "in_future", "event_type_mismatch", "not_found", "too_large", "too_deep", "nul_character"}
)

#: What v1.5 clients call `cluster_id`.
CLUSTER_NAME_ALIAS = "cluster_name"
_NON_FIELD = "non_field_errors"


@dataclass(frozen=True, slots=True)
class FieldError:
    #: The path in the body, e.g. `[3].event_data.event_type`; "" for the body itself.
    field: str
    code: str
    message: str


class EventsInvalid(serializers.ValidationError):
    """One or more events are invalid; nothing of the request may be stored.

    `errors` lists the first MAX_REPORTED_ERRORS problems in input order, `error_count` counts
    all of them. `detail` maps each listed path to its errors, so DRF's exception handling sees
    an ordinary ValidationError.
    """

    def __init__(self, errors: list[FieldError]) -> None:
        self.errors = errors[:MAX_REPORTED_ERRORS]
        self.error_count = len(errors)
        detail: dict[str, list[ErrorDetail]] = {}
        for error in self.errors:
            detail.setdefault(error.field, []).append(ErrorDetail(error.message, code=error.code))
        super().__init__(detail)


class EventBatchSizeInvalid(EventsInvalid):
    """The batch is empty or holds more events than allowed (upstream: `batch-size-exceeded`)."""


@dataclass(frozen=True, slots=True)
class ValidatedEvent:
    """One valid event, ready to store."""

    #: Every field of the document but `event_data`, by column name; None when absent.
    columns: dict[str, Any]
    event_data: EventData
    #: The top-level keys the document does not name, and their compact JSON; None if none.
    extra_fields: dict[str, Any] | None
    extra_fields_json: bytes | None

    @property
    def parent_event_id(self) -> uuid.UUID | None:
        parent: uuid.UUID | None = self.columns["parent_event_id"]
        return parent


class AuditEventRequestSerializer(serializers.Serializer):
    """Upstream's `AuditEventRequest`. Validate with `audit_event_validated` or
    `audit_events_validated`, which also check the parent event; `event_validated` checks
    everything else of one event against the server's time `now`."""

    version = DocumentStringField(allow_blank=False, max_length=VERSION_LENGTH)
    event_type = DocumentStringField(allow_blank=False, max_length=EVENT_TYPE_LENGTH)
    event_timestamp = EventDateTimeField()
    # The enum bounds it below the document's maxLength of 50.
    event_category = DocumentChoiceField(choices=EventCategory.values)
    event_action = DocumentStringField(allow_blank=False, max_length=EVENT_ACTION_LENGTH)
    event_outcome = DocumentChoiceField(choices=EventOutcome.values)
    actor_type = DocumentStringField(required=False)
    actor_id = DocumentStringField(required=False)
    actor_ip = DocumentStringField(required=False, max_length=ACTOR_IP_LENGTH)
    resource_type = DocumentStringField(required=False)
    resource_id = DocumentStringField(required=False)
    correlation_id = DocumentStringField(allow_blank=False, max_length=CORRELATION_ID_LENGTH)
    parent_event_id = UUIDStringField(required=False, allow_null=True)
    namespace = DocumentStringField(required=False, allow_null=True)
    cluster_id = DocumentStringField(required=False, allow_null=True)
    severity = DocumentStringField(required=False, allow_null=True)
    duration_ms = DocumentIntegerField(required=False, allow_null=True)
    parent_event_date = EventDateTimeField(required=False, allow_null=True)
    error_code = DocumentStringField(required=False, allow_null=True)
    error_message = DocumentStringField(required=False, allow_null=True)
    retention_days = DocumentIntegerField(required=False, allow_null=True)
    is_sensitive = StrictBooleanField(required=False, allow_null=True)
    event_data = EventDataField()

    default_error_messages = {"invalid": "Must be a JSON object."}

    @cached_property
    def _fields_by_name(self) -> dict[str, serializers.Field]:
        return {str(name): field for name, field in self.fields.items()}

    def to_internal_value(self, data: Any) -> ValidatedEvent:  # type: ignore[override]
        return self.event_validated(data, now=self.context.get("now") or timezone.now())

    def event_validated(self, data: Any, *, now: dt.datetime) -> ValidatedEvent:
        """One event, or ValidationError with every problem of it (a dict of paths, nested)."""
        if not isinstance(data, Mapping):
            raise serializers.ValidationError(
                {_NON_FIELD: [ErrorDetail(str(self.error_messages["invalid"]), "invalid")]}
            )
        fields = self._fields_by_name
        known = {key: value for key, value in data.items() if key in fields}
        extra = {key: value for key, value in data.items() if key not in fields}
        cluster_from_name = CLUSTER_NAME_ALIAS in extra and known.get("cluster_id") is None
        if cluster_from_name:
            known["cluster_id"] = extra.pop(CLUSTER_NAME_ALIAS)

        # DRF's own loop without its per-field bookkeeping (a fifth of a batch's validation time),
        # keeping the valid values when another field is invalid: the window and the
        # discriminator are checked even then.
        values: dict[str, Any] = {}
        errors: dict[str, Any] = {}
        for name, field in fields.items():
            try:
                values[name] = field.run_validation(known.get(name, empty))
            except serializers.ValidationError as exc:
                errors[name] = exc.detail
            except SkipField:
                values[name] = None
        if cluster_from_name and "cluster_id" in errors:
            errors[CLUSTER_NAME_ALIAS] = errors.pop("cluster_id")
        timestamp = values.get("event_timestamp")
        if timestamp is not None:
            window = _window_error(timestamp, now=now)
            if window is not None:
                errors["event_timestamp"] = [window]
        mismatch = _event_type_mismatch(known) if "event_type" not in errors else None
        if mismatch is not None:
            errors.setdefault("event_data", {}).setdefault("event_type", []).append(mismatch)
        extra_json, extra_errors = _extra_fields_encoded(extra)
        errors.update(extra_errors)
        if errors:
            raise serializers.ValidationError(errors)

        event_data = values.pop("event_data")
        return ValidatedEvent(
            columns=values, event_data=event_data, extra_fields=extra or None, extra_fields_json=extra_json
        )


def _window_error(timestamp: dt.datetime, *, now: dt.datetime) -> ErrorDetail | None:
    if timestamp < now - EVENT_TIMESTAMP_MAX_AGE:
        return ErrorDetail("Must not be more than 7 days before the server's time.", code="too_old")
    if timestamp > now + EVENT_TIMESTAMP_MAX_AHEAD:
        return ErrorDetail("Must not be more than 60 minutes after the server's time.", code="in_future")
    return None


def _event_type_mismatch(known: Mapping[str, Any]) -> ErrorDetail | None:
    """The payload's type, a known one, differs from the event's own (valid by its own rule)."""
    envelope = known.get("event_type")
    event_data = known.get("event_data")
    payload = event_data.get("event_type") if isinstance(event_data, dict) else None
    if isinstance(envelope, str) and payload in EVENT_TYPES and payload != envelope:
        return ErrorDetail("Must equal the event's own event_type.", code="event_type_mismatch")
    return None


def _extra_fields_encoded(extra: dict[str, Any]) -> tuple[bytes | None, dict[str, list[ErrorDetail]]]:
    """The unknown keys' compact JSON, or errors naming the keys PostgreSQL could not store."""
    if not extra:
        return None, {}
    try:
        encoded = event_json_dumps(extra)
    except EventJSONError:
        encoded = None
    if encoded is not None and b"\\u0000" not in encoded:
        return encoded, {}
    errors: dict[str, list[ErrorDetail]] = {}
    for key, value in extra.items():
        try:
            event_json_dumps(value)
        except EventJSONError as exc:
            errors[key] = [ErrorDetail(f"Must be JSON data: {exc}.", code="invalid")]
            continue
        if json_value_problems({key: value}, max_nesting=None)[1]:
            errors[key] = [ErrorDetail(NUL_MESSAGE, code="nul_character")]
    return (None, errors) if errors else (encoded, {})


def audit_event_validated(*, data: Any, now: dt.datetime) -> ValidatedEvent:
    """One event (`POST /api/v1/audit/events`), or EventsInvalid with paths like `event_data`."""
    return _events_validated(items=[data], now=now, indexed=False)[0]


def audit_events_validated(
    *, data: Any, now: dt.datetime, max_events: int = AUDIT_EVENTS_BATCH_MAX
) -> list[ValidatedEvent]:
    """A batch (`POST /api/v1/audit/events/batch`): a JSON array of 1 to `max_events` events,
    validated all or nothing. Raises EventBatchSizeInvalid for an empty or oversized array
    (before any event is looked at), EventsInvalid with paths like `[3].version` otherwise."""
    if not isinstance(data, list):
        raise EventsInvalid([FieldError("", "not_a_list", "Must be a JSON array of audit events.")])
    if not data:
        raise EventBatchSizeInvalid([FieldError("", "empty", "Must hold at least one audit event.")])
    if len(data) > max_events:
        raise EventBatchSizeInvalid(
            [FieldError("", "too_many", f"Must hold at most {max_events} audit events; it holds {len(data)}.")]
        )
    return _events_validated(items=data, now=now, indexed=True)


class _ThreadSerializer(threading.local):
    serializer: AuditEventRequestSerializer | None = None


_thread = _ThreadSerializer()


def _thread_serializer() -> AuditEventRequestSerializer:
    """This thread's serializer: DRF deep-copies every declared field for each instance it makes
    (about half a millisecond here), and `event_validated` keeps no state between calls."""
    if _thread.serializer is None:
        _thread.serializer = AuditEventRequestSerializer()
    return _thread.serializer


def _events_validated(*, items: list[Any], now: dt.datetime, indexed: bool) -> list[ValidatedEvent]:
    serializer = _thread_serializer()
    events: list[ValidatedEvent | None] = []
    errors: list[tuple[int, FieldError]] = []
    for index, item in enumerate(items):
        try:
            events.append(serializer.event_validated(item, now=now))
        except serializers.ValidationError as exc:
            events.append(None)
            prefix = f"[{index}]" if indexed else ""
            errors += [(index, error) for error in _flattened(exc.detail, prefix)]

    parents = {event.parent_event_id for event in events if event is not None and event.parent_event_id is not None}
    if parents:
        stored = events_existing(event_ids=parents)
        for index, event in enumerate(events):
            if event is not None and event.parent_event_id is not None and event.parent_event_id not in stored:
                path = _path(f"[{index}]" if indexed else "", "parent_event_id")
                errors.append((index, FieldError(path, "not_found", "No stored audit event has this id.")))

    if errors:
        errors.sort(key=lambda entry: entry[0])  # stable: each event's own errors keep their order
        raise EventsInvalid([error for _, error in errors])
    return [event for event in events if event is not None]


def _flattened(detail: Any, path: str) -> Iterator[FieldError]:
    if isinstance(detail, dict):
        for key, value in detail.items():
            yield from _flattened(value, path if key == _NON_FIELD else _path(path, str(key)))
    elif isinstance(detail, list):
        for item in detail:
            yield from _flattened(item, path)
    else:
        yield FieldError(path, str(getattr(detail, "code", None) or "invalid"), str(detail))


def _path(prefix: str, key: str) -> str:
    return f"{prefix}.{key}" if prefix else key
