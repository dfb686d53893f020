"""Validation of a batch body: `{"records": [{"kind": …, "record": {…}}, …]}`.

Each `record` is validated by its kind's own serializer (audit/api/serializers.py), so a record is
valid in a batch exactly when its endpoint would take it. Every problem of every record is
reported at once, each under its path (`records[3].record.signalName`); serializers validate
and never write.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from drf_spectacular.utils import PolymorphicProxySerializer, inline_serializer
from rest_framework import serializers
from rest_framework.exceptions import ErrorDetail

from audit.api.serializers import AUDIT_SERIALIZERS, audit_validated
from audit.models import AuditKind
from audit.write.batch import BatchRecord
from kubernaut_storage.http.errors import MAX_LISTED_ERRORS, unknown_fields_error, validation_error_count
from kubernaut_storage.http.exceptions import BatchTooLarge

_ITEM_KEYS = ("kind", "record")
# Computed once: AuditKind.values builds a new list on every access.
_KIND_VALUES = frozenset(kind.value for kind in AuditKind)
_KINDS = ", ".join(kind.value for kind in AuditKind)

Errors = dict[Any, Any]


@dataclass(slots=True)
class BatchEnvelope:
    """The records of a batch whose `{kind, record}` wrapper is sound, and the errors of the rest."""

    #: (position in the batch, kind, record body as received)
    items: list[tuple[int, AuditKind, Any]] = field(default_factory=list)
    #: position → that item's wrapper errors, keyed as the caller spelled the keys
    errors: dict[int, Errors] = field(default_factory=dict)

    @property
    def kinds(self) -> dict[int, AuditKind]:
        return {index: kind for index, kind, _ in self.items}

    @property
    def records(self) -> int:
        """How many records the batch holds, sound or not."""
        return len(self.items) + len(self.errors)


def audit_batch_envelope(*, data: Any, max_records: int) -> BatchEnvelope:
    """The batch's items, checked only as far as `{kind, record}`: enough to authorize them.

    Raises ValidationError when the body itself is unusable (not an object, no `records`
    list, no record), BatchTooLarge above `max_records`, before any record is validated.
    """
    if not isinstance(data, Mapping):
        raise serializers.ValidationError({"non_field_errors": [_error("Must be a JSON object.", "invalid")]})
    unknown_keys = [key for key in data if key != "records"]
    errors: Errors = {"non_field_errors": [unknown_fields_error(unknown_keys)]} if unknown_keys else {}
    records = data.get("records")
    if "records" not in data:
        errors["records"] = [_error("This field is required.", "required")]
    elif not isinstance(records, list):
        errors["records"] = [_error("Must be a list of {kind, record} objects.", "not_a_list")]
    elif not records:
        errors["records"] = [_error("Must hold at least one record.", "empty")]
    if errors:
        raise serializers.ValidationError(errors)
    assert isinstance(records, list)
    if len(records) > max_records:
        raise BatchTooLarge(f"The batch holds {len(records)} records; at most {max_records} are allowed.")

    envelope = BatchEnvelope()
    for index, item in enumerate(records):
        if not isinstance(item, Mapping):
            envelope.errors[index] = {"non_field_errors": [_error("Must be a JSON object.", "invalid")]}
            continue
        unknown_keys = [key for key in item if key not in _ITEM_KEYS]
        item_errors: Errors = {"non_field_errors": [unknown_fields_error(unknown_keys)]} if unknown_keys else {}
        kind = item.get("kind")
        if "kind" not in item:
            item_errors["kind"] = [_error("This field is required.", "required")]
        elif not isinstance(kind, str) or kind not in _KIND_VALUES:
            item_errors["kind"] = [_error(f"Must be one of: {_KINDS}.", "invalid_choice")]
        if "record" not in item:
            item_errors["record"] = [_error("This field is required.", "required")]
        if item_errors:
            envelope.errors[index] = item_errors
        else:
            envelope.items.append((index, AuditKind(str(kind)), item["record"]))
    return envelope


def audit_batch_validated(*, envelope: BatchEnvelope) -> list[BatchRecord]:
    """Every record validated by its kind's serializer, in order; or one ValidationError that
    lists every problem of every record, wrapper errors included."""
    errors: dict[int, Errors] = dict(envelope.errors)
    found = validation_error_count(errors)
    records: list[BatchRecord] = []
    for position, (index, kind, body) in enumerate(envelope.items):
        if found > MAX_LISTED_ERRORS:
            # Enough to list: validating the rest would cost up to 500 records' worth of errors
            # that no answer shows.
            unchecked = [item_index for item_index, _, _ in envelope.items[position:]]
            stopped: Errors = {
                "non_field_errors": [_error(_unchecked_message(unchecked), "records_not_validated")],
                "records": dict(sorted(errors.items())),
            }
            raise serializers.ValidationError(stopped)
        try:
            data = audit_validated(kind=kind, data=body)
        except serializers.ValidationError as exc:
            errors[index] = {"record": exc.detail}
            found += validation_error_count(exc.detail)
            continue
        records.append(BatchRecord(kind=kind, data=data, payload=body))
    if errors:
        by_position: Errors = dict(sorted(errors.items()))
        raise serializers.ValidationError({"records": by_position})
    return records


def _unchecked_message(indexes: list[int]) -> str:
    unchecked = f"record {indexes[0]}" if len(indexes) == 1 else f"{len(indexes)} records from {indexes[0]} on"
    return f"Not validated: {unchecked}; those before have more errors than one answer lists."


def _error(message: str, code: str) -> ErrorDetail:
    return ErrorDetail(message, code=code)


# --- the OpenAPI document -----------------------------------------------------------------------

AuditBatchRecordSerializer = PolymorphicProxySerializer(
    component_name="AuditBatchRecord",
    serializers={
        kind.value: inline_serializer(
            f"AuditBatchRecord{serializer.__name__.removesuffix('AuditSerializer')}",
            fields={"kind": serializers.ChoiceField(choices=[kind.value]), "record": serializer()},
        )
        for kind, serializer in AUDIT_SERIALIZERS.items()
    },
    resource_type_field_name="kind",
    many=False,
)
AuditBatchSerializer = inline_serializer(
    "AuditBatch",
    fields={
        "records": serializers.ListField(
            child=AuditBatchRecordSerializer, min_length=1, max_length=settings.AUDIT_BATCH_MAX_RECORDS
        )
    },
)
