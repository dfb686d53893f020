"""Validation of the four audit bodies Serializers validate; they never write.

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

from audit.fields import (
    Base64Field,
    BoundedJSONObjectField,
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
from audit.models import AuditKind, Phase

#: How far in the future `createdAt` may lie: clocks of controllers and of this service drift.
CREATED_AT_MAX_SKEW = dt.timedelta(minutes=5)

TARGET_TYPES = [
    "deployment",
    "statefulset",
    "daemonset",
    "replicaset",
    "pod",
    "node",
    "job",
    "cronjob",
    "horizontalpodautoscaler",
    "persistentvolumeclaim",
    "service",
    "configmap",
]

_CORRELATION_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,254}$")
_TOKEN = re.compile(r"^[a-z0-9][a-z0-9._-]{0,62}$")
_ACTION_TYPE = re.compile(r"^[a-z][a-z0-9_.-]{0,62}$")
_FINGERPRINT = re.compile(r"^[0-9a-f]{64}$")


def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.capitalize() for part in rest)


def _time_order_errors(attrs: Mapping[str, Any]) -> dict[str, list[str]]:
    """`createdAt ≤ startedAt ≤ completedAt` where present (start/end only for steps).

    Cross-field errors are keyed by the camelCase name the caller sent, like field errors.
    """
    errors: dict[str, list[str]] = {}
    created, started, completed = attrs.get("created_at"), attrs.get("started_at"), attrs.get("completed_at")
    if created and started and started < created:
        errors["startedAt"] = ["Must not be before createdAt."]
    if completed and started and completed < started:
        errors["completedAt"] = ["Must not be before startedAt."]
    elif completed and created and completed < created:
        errors["completedAt"] = ["Must not be before createdAt."]
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
        unknown: dict[str, list[ErrorDetail]] = {}
        for key, value in data.items():
            if key in by_camel:
                renamed[by_camel[key]] = value
            else:
                unknown[key] = [ErrorDetail("Unknown field.", code="unknown_field")]
        try:
            validated = super().to_internal_value(renamed)
        except serializers.ValidationError as exc:
            if not isinstance(exc.detail, dict):  # pragma: no cover - DRF always gives a dict here
                raise
            # Name each field as the caller spelled it; unknown keys are already verbatim.
            field_errors = {camel(key): errors for key, errors in exc.detail.items()}
            raise serializers.ValidationError({**field_errors, **unknown}) from exc
        if unknown:
            raise serializers.ValidationError(unknown)
        return validated

    @cached_property
    def _names_by_camel(self) -> dict[str, str]:
        return {camel(name): name for name in map(str, self.fields)}


class StepStatusSerializer(CamelCaseSerializer):
    name = StrictCharField(max_length=253)
    phase = StrictChoiceField(choices=Phase.values)
    started_at = RFC3339DateTimeField(required=False)
    completed_at = RFC3339DateTimeField(required=False)
    retry_count = StrictIntegerField(required=False, min_value=0, max_value=1000)
    message = StrictCharField(required=False, allow_blank=True, multiline=True, max_bytes=4096)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        errors = _time_order_errors(attrs)
        if errors:
            raise serializers.ValidationError(errors)
        return attrs


class AuditRecordSerializer(CamelCaseSerializer):
    """The fields common to all four audit types."""

    kind: AuditKind

    name = dns_subdomain_field()
    namespace = dns_label_field()
    phase = StrictChoiceField(choices=Phase.values)
    message = StrictCharField(required=False, allow_blank=True, multiline=True, max_bytes=10 * 1024)
    created_at = RFC3339DateTimeField()
    started_at = RFC3339DateTimeField(required=False)
    completed_at = RFC3339DateTimeField(required=False)
    correlation_id = PatternField(
        pattern=_CORRELATION_ID,
        description="Must be 1-255 of A-Z a-z 0-9 . _ : - and start with a letter or digit.",
        max_length=255,
    )
    labels = kubernetes_labels_field(required=False)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        errors = _time_order_errors(attrs)
        if attrs["created_at"] > timezone.now() + CREATED_AT_MAX_SKEW:
            errors["createdAt"] = ["Must not be more than 5 minutes in the future."]
        errors.update(self.validate_kind(attrs))
        if errors:
            raise serializers.ValidationError(errors)
        return attrs

    def validate_kind(self, attrs: dict[str, Any]) -> dict[str, list[str]]:
        """Cross-field rules of one audit type; camelCase field name → messages."""
        return {}


class RemediationAuditSerializer(AuditRecordSerializer):
    kind = AuditKind.REMEDIATION

    signal_type = StrictChoiceField(choices=["prometheus", "kubernetes-event"])
    signal_name = StrictCharField(max_length=253)
    signal_namespace = dns_label_field()
    target_type = StrictChoiceField(choices=TARGET_TYPES)
    target_name = dns_subdomain_field()
    target_namespace = dns_label_field()
    environment = StrictChoiceField(choices=["production", "staging", "development"], required=False)
    priority = StrictChoiceField(choices=["P0", "P1", "P2", "P3"], required=False)
    fingerprint = PatternField(
        pattern=_FINGERPRINT, description="Must be 64 lowercase hexadecimal characters.", required=False
    )
    reason = StrictCharField(required=False, allow_blank=True, multiline=True, max_bytes=4096)
    original_payload = Base64Field(required=False, allow_blank=True, max_length=512 * 1024)


class AIAnalysisAuditSerializer(AuditRecordSerializer):
    kind = AuditKind.AI_ANALYSIS

    remediation_request_ref = dns_subdomain_field()
    signal_type = StrictChoiceField(choices=["prometheus", "kubernetes-event"], required=False)
    signal_context = BoundedJSONObjectField(required=False)
    llm_provider = PatternField(
        pattern=_TOKEN, description="Must be a provider id such as openai, anthropic or local.", required=False
    )
    llm_model = StrictCharField(required=False, max_length=253)
    temperature = StrictFloatField(required=False, min_value=0, max_value=2)
    root_cause = StrictCharField(required=False, allow_blank=True, multiline=True, max_bytes=10 * 1024)
    confidence = StrictFloatField(required=False, min_value=0, max_value=1)
    recommended_action = StrictCharField(required=False, allow_blank=True, multiline=True, max_bytes=4096)
    requires_approval = StrictBooleanField(required=False)
    investigation_id = StrictCharField(required=False, max_length=255)
    tokens_used = StrictIntegerField(required=False, min_value=1, max_value=100_000_000)
    investigation_time_seconds = StrictFloatField(required=False, min_value=0, max_value=7 * 24 * 3600)


class WorkflowAuditSerializer(AuditRecordSerializer):
    kind = AuditKind.WORKFLOW

    remediation_request_ref = dns_subdomain_field()
    ai_analysis_ref = dns_subdomain_field(required=False)
    workflow_name = StrictCharField(max_length=253)
    is_auto_approved = StrictBooleanField(required=False)
    requires_approval = StrictBooleanField(required=False)
    step_count = StrictIntegerField(required=False, min_value=1, max_value=1000)
    current_step = StrictIntegerField(required=False, min_value=0, max_value=1000)
    completed_count = StrictIntegerField(required=False, min_value=0, max_value=1000)
    failed_count = StrictIntegerField(required=False, min_value=0, max_value=1000)
    skipped_count = StrictIntegerField(required=False, min_value=0, max_value=1000)
    step_statuses = StepStatusSerializer(many=True, required=False, max_length=1000)  # type: ignore[call-arg]

    def validate_kind(self, attrs: dict[str, Any]) -> dict[str, list[str]]:
        errors: dict[str, list[str]] = {}
        step_count = attrs.get("step_count")
        if step_count is None:
            return errors
        if attrs.get("current_step", 0) > step_count:
            errors["currentStep"] = ["Must not exceed stepCount."]
        done = sum(attrs.get(name, 0) for name in ("completed_count", "failed_count", "skipped_count"))
        if done > step_count:
            errors["completedCount"] = ["completedCount + failedCount + skippedCount must not exceed stepCount."]
        if len(attrs.get("step_statuses", [])) > step_count:
            errors["stepStatuses"] = ["Must not list more steps than stepCount."]
        return errors


class ExecutionAuditSerializer(AuditRecordSerializer):
    kind = AuditKind.EXECUTION

    workflow_execution_ref = dns_subdomain_field()
    step_name = StrictCharField(required=False, max_length=253)
    action_type = PatternField(
        pattern=_ACTION_TYPE, description="Must be an action id such as scale_deployment or restart_pod."
    )
    action_data = StringMapField(
        required=False, max_entries=64, max_key_bytes=253, max_value_bytes=4096, multiline_values=True
    )
    target_type = StrictChoiceField(choices=TARGET_TYPES, required=False)
    target_name = dns_subdomain_field(required=False)
    target_namespace = dns_label_field(required=False)
    enable_dry_run = StrictBooleanField(required=False)
    enable_validation = StrictBooleanField(required=False)
    enable_rollback = StrictBooleanField(required=False)
    action_result = StrictCharField(required=False, allow_blank=True, multiline=True, max_bytes=10 * 1024)
    resource_version = StrictCharField(required=False, max_length=64)
    previous_version = StrictCharField(required=False, max_length=64)
    dry_run_result = StrictCharField(required=False, allow_blank=True, multiline=True, max_bytes=10 * 1024)
    validation_result = StrictCharField(required=False, allow_blank=True, multiline=True, max_bytes=10 * 1024)
    validation_warnings = serializers.ListField(
        child=StrictCharField(max_bytes=1024, multiline=True), required=False, max_length=100
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
