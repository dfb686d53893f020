"""Validation of the four audit bodies. Serializers validate; they never write.

JSON keys are camelCase; the serializers declare snake_case fields and translate at the edge,
so the rest of the code speaks Python and every error names the field as the caller sent it.
"""

from __future__ import annotations

import datetime as dt
import re
import threading
from collections.abc import Mapping
from functools import cached_property
from typing import Any

from django.utils import timezone
from rest_framework import serializers
from rest_framework.exceptions import ErrorDetail

from audit import limits
from audit.api.fields import (
    Base64Field,
    BoundedJSONObjectField,
    LengthFirstListField,
    PatternField,
    RFC3339DateTimeField,
    StrictBooleanField,
    StrictCharField,
    StrictChoiceField,
    StrictFloatField,
    StrictIntegerField,
    StringMapField,
    dns_label_field,
    dns_subdomain_field,
    kubernetes_labels_field,
)
from audit.choices import SIGNAL_TYPES, TARGET_TYPES, AuditKind, Phase
from kubernaut_storage.http.errors import unknown_fields_error

#: How far in the future `createdAt` may lie: clocks of controllers and of this service drift.
CREATED_AT_MAX_SKEW = dt.timedelta(minutes=5)

_CORRELATION_ID = re.compile(rf"^[A-Za-z0-9][A-Za-z0-9._:-]{{0,{limits.CORRELATION_ID_LENGTH - 1}}}$")
_PROVIDER_ID = re.compile(rf"^[a-z0-9][a-z0-9._-]{{0,{limits.PROVIDER_ID_LENGTH - 1}}}$")
_ACTION_TYPE = re.compile(rf"^[a-z][a-z0-9_.-]{{0,{limits.ACTION_TYPE_LENGTH - 1}}}$")
_FINGERPRINT = re.compile(rf"^[0-9a-f]{{{limits.FINGERPRINT_LENGTH}}}$")


def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.capitalize() for part in rest)


#: The codes of the rules that relate fields to each other (or to the clock). JSON Schema cannot
#: state them; the OpenAPI document describes them in words, and only they can refuse a body the
#: schema calls valid.
CROSS_FIELD_CODES = frozenset({"time_order", "future", "exceeds_step_count"})

CrossFieldErrors = dict[str, list[ErrorDetail]]


def _cross_field_error(message: str, code: str) -> list[ErrorDetail]:
    assert code in CROSS_FIELD_CODES
    return [ErrorDetail(message, code=code)]


def _time_order_errors(attrs: Mapping[str, Any]) -> CrossFieldErrors:
    """`createdAt ≤ startedAt ≤ completedAt` where present (start/end only for steps).

    Cross-field errors are keyed by the camelCase name the caller sent, like field errors.
    """
    errors: CrossFieldErrors = {}
    created, started, completed = attrs.get("created_at"), attrs.get("started_at"), attrs.get("completed_at")
    if created and started and started < created:
        errors["startedAt"] = _cross_field_error("Must not be before createdAt.", "time_order")
    if completed and started and completed < started:
        errors["completedAt"] = _cross_field_error("Must not be before startedAt.", "time_order")
    elif completed and created and completed < created:
        errors["completedAt"] = _cross_field_error("Must not be before createdAt.", "time_order")
    return errors


class CamelCaseSerializer(serializers.Serializer):
    """Takes camelCase keys, refuses unknown ones, and reports every bad field in one pass."""

    default_error_messages = {"invalid": "Must be a JSON object."}

    def to_internal_value(self, data: Any) -> dict[str, Any]:
        if not isinstance(data, Mapping):
            raise serializers.ValidationError(
                {"non_field_errors": [ErrorDetail(str(self.error_messages["invalid"]), code="invalid")]}
            )
        by_camel = self._names_by_camel
        renamed: dict[str, Any] = {}
        unknown_keys: list[str] = []
        for key, value in data.items():
            if key in by_camel:
                renamed[by_camel[key]] = value
            else:
                unknown_keys.append(key)
        # However many, one error object (kubernaut_storage/http/errors.py), listed after the fields'.
        unknown = {"non_field_errors": [unknown_fields_error(unknown_keys)]} if unknown_keys else {}
        try:
            validated = super().to_internal_value(renamed)
        except serializers.ValidationError as exc:
            if not isinstance(exc.detail, dict):  # pragma: no cover - DRF always gives a dict here
                raise
            # Name each field as the caller spelled it.
            field_errors = {camel(key): errors for key, errors in exc.detail.items()}
            raise serializers.ValidationError({**field_errors, **unknown}) from exc
        if unknown:
            raise serializers.ValidationError(unknown)
        return validated

    @cached_property
    def _names_by_camel(self) -> dict[str, str]:
        return {camel(name): name for name in map(str, self.fields)}


class StepStatusSerializer(CamelCaseSerializer):
    """One step of a workflow. `completedAt` must not be before `startedAt` (error code `time_order`)."""

    name = StrictCharField(max_length=limits.NAME_TEXT_LENGTH)
    phase = StrictChoiceField(choices=Phase.values)
    started_at = RFC3339DateTimeField(required=False)
    completed_at = RFC3339DateTimeField(required=False)
    retry_count = StrictIntegerField(required=False, min_value=0, max_value=limits.STEP_MAX_RETRIES)
    message = StrictCharField(required=False, allow_blank=True, multiline=True, max_length=limits.STEP_MESSAGE_LENGTH)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        errors = _time_order_errors(attrs)
        if errors:
            raise serializers.ValidationError(errors)
        return attrs


class AuditRecordSerializer(CamelCaseSerializer):
    """An audit record. Beyond each field's own rules: `createdAt` must not be more than 5 minutes
    in the future (error code `future`), and `createdAt ≤ startedAt ≤ completedAt` where present
    (error code `time_order`)."""

    kind: AuditKind

    name = dns_subdomain_field()
    namespace = dns_label_field()
    phase = StrictChoiceField(choices=Phase.values)
    message = StrictCharField(required=False, allow_blank=True, multiline=True, max_length=limits.MESSAGE_LENGTH)
    created_at = RFC3339DateTimeField()
    started_at = RFC3339DateTimeField(required=False)
    completed_at = RFC3339DateTimeField(required=False)
    correlation_id = PatternField(
        pattern=_CORRELATION_ID,
        description=f"Must be 1-{limits.CORRELATION_ID_LENGTH} of A-Z a-z 0-9 . _ : - "
        "and start with a letter or digit.",
        max_length=limits.CORRELATION_ID_LENGTH,
    )
    labels = kubernetes_labels_field(required=False)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        errors = _time_order_errors(attrs)
        if attrs["created_at"] > timezone.now() + CREATED_AT_MAX_SKEW:
            errors["createdAt"] = _cross_field_error("Must not be more than 5 minutes in the future.", "future")
        errors.update(self.validate_kind(attrs))
        if errors:
            raise serializers.ValidationError(errors)
        return attrs

    def validate_kind(self, attrs: dict[str, Any]) -> CrossFieldErrors:
        """Cross-field rules of one audit type; camelCase field name → errors."""
        return {}


class RemediationAuditSerializer(AuditRecordSerializer):
    kind = AuditKind.REMEDIATION

    signal_type = StrictChoiceField(choices=SIGNAL_TYPES)
    signal_name = StrictCharField(max_length=limits.NAME_TEXT_LENGTH)
    signal_namespace = dns_label_field()
    target_type = StrictChoiceField(choices=TARGET_TYPES)
    target_name = dns_subdomain_field()
    target_namespace = dns_label_field()
    environment = StrictChoiceField(choices=["production", "staging", "development"], required=False)
    priority = StrictChoiceField(choices=["P0", "P1", "P2", "P3"], required=False)
    fingerprint = PatternField(
        pattern=_FINGERPRINT,
        description=f"Must be {limits.FINGERPRINT_LENGTH} lowercase hexadecimal characters.",
        max_length=limits.FINGERPRINT_LENGTH,
        required=False,
    )
    reason = StrictCharField(required=False, allow_blank=True, multiline=True, max_length=limits.REASON_LENGTH)
    original_payload = Base64Field(required=False, allow_blank=True, max_length=limits.ORIGINAL_PAYLOAD_LENGTH)


class AIAnalysisAuditSerializer(AuditRecordSerializer):
    kind = AuditKind.AI_ANALYSIS

    remediation_request_ref = dns_subdomain_field()
    signal_type = StrictChoiceField(choices=SIGNAL_TYPES, required=False)
    signal_context = BoundedJSONObjectField(
        required=False,
        max_depth=limits.SIGNAL_CONTEXT_MAX_DEPTH,
        max_items=limits.SIGNAL_CONTEXT_MAX_ITEMS,
        max_string_length=limits.SIGNAL_CONTEXT_STRING_LENGTH,
    )
    llm_provider = PatternField(
        pattern=_PROVIDER_ID,
        description="Must be a provider id such as openai, anthropic or local.",
        max_length=limits.PROVIDER_ID_LENGTH,
        required=False,
    )
    llm_model = StrictCharField(required=False, max_length=limits.NAME_TEXT_LENGTH)
    temperature = StrictFloatField(required=False, min_value=0, max_value=2)
    root_cause = StrictCharField(required=False, allow_blank=True, multiline=True, max_length=limits.MESSAGE_LENGTH)
    confidence = StrictFloatField(required=False, min_value=0, max_value=1)
    # What the column holds: a recommended action is short; the reasoning goes in rootCause.
    recommended_action = StrictCharField(
        required=False, allow_blank=True, multiline=True, max_length=limits.NAME_TEXT_LENGTH
    )
    requires_approval = StrictBooleanField(required=False)
    investigation_id = StrictCharField(required=False, max_length=limits.INVESTIGATION_ID_LENGTH)
    tokens_used = StrictIntegerField(required=False, min_value=1, max_value=limits.MAX_TOKENS_USED)
    investigation_time_seconds = StrictFloatField(
        required=False, min_value=0, max_value=limits.MAX_INVESTIGATION_SECONDS
    )


class WorkflowAuditSerializer(AuditRecordSerializer):
    """A workflow execution's audit record. Beyond each field's own rules: `createdAt` must not be
    more than 5 minutes in the future (error code `future`), `createdAt ≤ startedAt ≤ completedAt`
    where present (`time_order`), and when `stepCount` is given, `currentStep`, the sum
    `completedCount + failedCount + skippedCount` and the number of `stepStatuses` must not exceed
    it (`exceeds_step_count`)."""

    kind = AuditKind.WORKFLOW

    remediation_request_ref = dns_subdomain_field()
    ai_analysis_ref = dns_subdomain_field(required=False)
    workflow_name = StrictCharField(max_length=limits.NAME_TEXT_LENGTH)
    is_auto_approved = StrictBooleanField(required=False)
    requires_approval = StrictBooleanField(required=False)
    step_count = StrictIntegerField(required=False, min_value=1, max_value=limits.WORKFLOW_MAX_STEPS)
    current_step = StrictIntegerField(required=False, min_value=0, max_value=limits.WORKFLOW_MAX_STEPS)
    completed_count = StrictIntegerField(required=False, min_value=0, max_value=limits.WORKFLOW_MAX_STEPS)
    failed_count = StrictIntegerField(required=False, min_value=0, max_value=limits.WORKFLOW_MAX_STEPS)
    skipped_count = StrictIntegerField(required=False, min_value=0, max_value=limits.WORKFLOW_MAX_STEPS)
    step_statuses = StepStatusSerializer(  # type: ignore[call-arg]
        many=True, required=False, max_length=limits.WORKFLOW_MAX_STEPS
    )

    def validate_kind(self, attrs: dict[str, Any]) -> CrossFieldErrors:
        errors: CrossFieldErrors = {}
        step_count = attrs.get("step_count")
        if step_count is None:
            return errors
        if attrs.get("current_step", 0) > step_count:
            errors["currentStep"] = _cross_field_error("Must not exceed stepCount.", "exceeds_step_count")
        done = sum(attrs.get(name, 0) for name in ("completed_count", "failed_count", "skipped_count"))
        if done > step_count:
            errors["completedCount"] = _cross_field_error(
                "completedCount + failedCount + skippedCount must not exceed stepCount.", "exceeds_step_count"
            )
        if len(attrs.get("step_statuses", [])) > step_count:
            errors["stepStatuses"] = _cross_field_error(
                "Must not list more steps than stepCount.", "exceeds_step_count"
            )
        return errors


class ExecutionAuditSerializer(AuditRecordSerializer):
    kind = AuditKind.EXECUTION

    workflow_execution_ref = dns_subdomain_field()
    step_name = StrictCharField(required=False, max_length=limits.NAME_TEXT_LENGTH)
    action_type = PatternField(
        pattern=_ACTION_TYPE,
        description="Must be an action id such as scale_deployment or restart_pod.",
        max_length=limits.ACTION_TYPE_LENGTH,
    )
    action_data = StringMapField(
        required=False,
        max_entries=limits.ACTION_DATA_MAX_ENTRIES,
        max_key_length=limits.ACTION_DATA_KEY_LENGTH,
        max_value_length=limits.ACTION_DATA_VALUE_LENGTH,
        multiline_values=True,
    )
    target_type = StrictChoiceField(choices=TARGET_TYPES, required=False)
    target_name = dns_subdomain_field(required=False)
    target_namespace = dns_label_field(required=False)
    enable_dry_run = StrictBooleanField(required=False)
    enable_validation = StrictBooleanField(required=False)
    enable_rollback = StrictBooleanField(required=False)
    action_result = StrictCharField(
        required=False, allow_blank=True, multiline=True, max_length=limits.RESULT_TEXT_LENGTH
    )
    resource_version = StrictCharField(required=False, max_length=limits.RESOURCE_VERSION_LENGTH)
    previous_version = StrictCharField(required=False, max_length=limits.RESOURCE_VERSION_LENGTH)
    dry_run_result = StrictCharField(
        required=False, allow_blank=True, multiline=True, max_length=limits.RESULT_TEXT_LENGTH
    )
    validation_result = StrictCharField(
        required=False, allow_blank=True, multiline=True, max_length=limits.RESULT_TEXT_LENGTH
    )
    validation_warnings = LengthFirstListField(
        child=StrictCharField(max_length=limits.VALIDATION_WARNING_LENGTH, multiline=True),
        required=False,
        max_length=limits.VALIDATION_WARNINGS_MAX_ITEMS,
    )
    is_rolled_back = StrictBooleanField(required=False)


AUDIT_SERIALIZERS: dict[AuditKind, type[AuditRecordSerializer]] = {
    serializer.kind: serializer
    for serializer in (
        RemediationAuditSerializer,
        AIAnalysisAuditSerializer,
        WorkflowAuditSerializer,
        ExecutionAuditSerializer,
    )
}


class _ThreadSerializers(threading.local):
    def __init__(self) -> None:
        self.by_kind: dict[AuditKind, AuditRecordSerializer] = {}


_thread_serializers = _ThreadSerializers()


def audit_validated(*, kind: AuditKind, data: Any) -> dict[str, Any]:
    """The validated data of one `kind` body, or ValidationError exactly as `is_valid()` raises it.

    DRF deep-copies every declared field for each serializer instance it makes, which was the
    largest cost of validation (docs/PERFORMANCE.md). A serializer keeps no state between
    `run_validation` calls, so each thread keeps one instance per kind and reuses it. An
    invalid body is validated once more the standard way, so that its errors are worded as
    `is_valid()` words them (e.g. "No data provided" for a JSON null).
    """
    serializer = _thread_serializers.by_kind.get(kind)
    if serializer is None:
        serializer = _thread_serializers.by_kind[kind] = AUDIT_SERIALIZERS[kind]()
    try:
        validated: dict[str, Any] = serializer.run_validation(data)
    except serializers.ValidationError:
        fresh = AUDIT_SERIALIZERS[kind](data=data)
        fresh.is_valid(raise_exception=True)
        validated = fresh.validated_data
    return validated
