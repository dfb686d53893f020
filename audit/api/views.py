"""The audit endpoints: authenticate, validate, call the write service, shape the 201.

Four take one record of their kind (`audit_record_create`); the batch endpoint takes many of
any kinds (`audit_batch_create`).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from django.conf import settings
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.authentication import BaseAuthentication
from rest_framework.exceptions import UnsupportedMediaType, ValidationError
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from audit import limits
from audit.api.batch_serializers import AuditBatchSerializer, audit_batch_envelope, audit_batch_validated
from audit.api.openapi import WRITE_HEADERS, write_responses
from audit.api.serializers import AUDIT_SERIALIZERS, audit_validated
from audit.models import AuditKind
from audit.write.batch import audit_batch_create
from audit.write.records_in_flight import RecordsInFlightFull, records_in_flight
from audit.write.single import audit_record_create
from kubernaut_storage.auth.authentication import (
    AllowedServiceAccounts,
    AuthenticatedServiceAccount,
    KubernetesTokenAuthentication,
    ServiceAccountUser,
    writers_forbidden,
)
from kubernaut_storage.auth.identity import LOCAL_ACTOR, request_actor
from kubernaut_storage.http.errors import correlation_id_of
from kubernaut_storage.http.middleware import log_fields_add
from kubernaut_storage.observability.metrics import AUDIT_WRITES, VALIDATION_FAILURES

AuditCreatedSerializer = inline_serializer(
    "AuditCreated",
    fields={
        "id": serializers.IntegerField(),
        "embeddingId": serializers.IntegerField(allow_null=True),
        "embeddingStatus": serializers.ChoiceField(choices=["stored", "pending"]),
        "correlationId": serializers.CharField(),
        "recordedAt": serializers.DateTimeField(),
    },
)
AuditBatchCreatedSerializer = inline_serializer(
    "AuditBatchCreated",
    fields={"results": serializers.ListField(child=AuditCreatedSerializer)},
)
#: The `kind` label of a batch request's outcome when no record was stored.
BATCH_KIND_LABEL = "batch"


def write_outcome(*, status_code: int, replayed: bool) -> str:
    """The `outcome` label of kubernaut_audit_writes_total for one answered POST."""
    if status_code == status.HTTP_201_CREATED:
        return "replayed" if replayed else "created"
    if status_code in (400, 413, 415):
        return "invalid"  # the body: fields, size, media type
    if status_code == status.HTTP_503_SERVICE_UNAVAILABLE:
        return "unavailable"  # database or TokenReview API down; the caller retries
    if status_code < 500:
        return "rejected"  # 401/403 who, 409/422 idempotency, 405 ...
    return "error"


class AuditWriteApi(APIView):
    """What the audit POST endpoints share: authentication, the body's media type, the
    Idempotency-Key header, and counting every answer's outcome."""

    # Read per request, not at import: AUTH_MODE is a setting (and tests override it).
    def get_authenticators(self) -> list[BaseAuthentication]:
        return [KubernetesTokenAuthentication()] if settings.AUTH_MODE == "tokenreview" else []

    def finalize_response(self, request: Request, response: Response, *args: Any, **kwargs: Any) -> Response:
        # Every answer passes here, errors included: the one place to count outcomes.
        response = super().finalize_response(request, response, *args, **kwargs)
        if request.method == "POST":
            outcome = write_outcome(
                status_code=response.status_code, replayed=response.get("Idempotent-Replayed") == "true"
            )
            self.outcome_count(response, outcome)
        log_fields_add(request._request, correlation_id=correlation_id_of(request), caller=_caller_of(request))
        return response

    def outcome_count(self, response: Response, outcome: str) -> None:
        raise NotImplementedError

    @staticmethod
    def idempotency_key_of(request: Request) -> str | None:
        """The request's Idempotency-Key, once its body is known to be JSON."""
        if request.content_type.split(";")[0].strip().lower() != "application/json":
            raise UnsupportedMediaType(request.content_type or "(none)")
        idempotency_key = request.headers.get("Idempotency-Key")
        if idempotency_key is not None and not 1 <= len(idempotency_key) <= limits.IDEMPOTENCY_KEY_LENGTH:
            raise ValidationError({"Idempotency-Key": [f"Must be 1-{limits.IDEMPOTENCY_KEY_LENGTH} characters."]})
        return idempotency_key


class AuditCreateApi(AuditWriteApi):
    """POST one audit record of `audit_kind`; answers 201 once it and its embedding committed."""

    audit_kind: AuditKind = AuditKind.REMEDIATION

    def get_permissions(self) -> list[BasePermission]:
        return [AllowedServiceAccounts()] if settings.AUTH_MODE == "tokenreview" else []

    def outcome_count(self, response: Response, outcome: str) -> None:
        AUDIT_WRITES.labels(kind=self.audit_kind.value, outcome=outcome).inc()
        if response.status_code == status.HTTP_400_BAD_REQUEST:
            VALIDATION_FAILURES.labels(kind=self.audit_kind.value).inc()

    def get_serializer_class(self) -> type[serializers.Serializer]:
        # drf-spectacular reads the request body schema from here, per endpoint.
        return AUDIT_SERIALIZERS[self.audit_kind]

    @extend_schema(parameters=WRITE_HEADERS, responses=write_responses(AuditCreatedSerializer))
    def post(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        idempotency_key = self.idempotency_key_of(request)
        write = audit_record_create(
            kind=self.audit_kind,
            data=audit_validated(kind=self.audit_kind, data=request.data),
            payload=request.data,
            actor=request_actor(request),
            request_id=request._request.request_id,  # type: ignore[attr-defined]
            idempotency_key=idempotency_key,
        )
        headers = {"X-Correlation-ID": write.body["correlationId"]}
        if write.replayed:
            headers["Idempotent-Replayed"] = "true"
        return Response(write.body, status=status.HTTP_201_CREATED, headers=headers)


class AuditBatchCreateApi(AuditWriteApi):
    """POST many audit records of any kinds; all are stored, or none (201 once all committed)."""

    #: The kinds of the batch's records, once they are valid.
    batch_kinds: tuple[AuditKind, ...] = ()

    def get_permissions(self) -> list[BasePermission]:
        # Who may write which kind depends on the records: checked per record in post().
        return [AuthenticatedServiceAccount()] if settings.AUTH_MODE == "tokenreview" else []

    def outcome_count(self, response: Response, outcome: str) -> None:
        if response.status_code == status.HTTP_201_CREATED:
            # Stored records are counted by their own kind, like single writes: the created
            # and replayed counts stay counts of records, however they arrived.
            for kind, count in Counter(self.batch_kinds).items():
                AUDIT_WRITES.labels(kind=kind.value, outcome=outcome).inc(count)
            return
        AUDIT_WRITES.labels(kind=BATCH_KIND_LABEL, outcome=outcome).inc()
        if response.status_code == status.HTTP_400_BAD_REQUEST:
            VALIDATION_FAILURES.labels(kind=BATCH_KIND_LABEL).inc()

    @extend_schema(
        request=AuditBatchSerializer, parameters=WRITE_HEADERS, responses=write_responses(AuditBatchCreatedSerializer)
    )
    def post(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        idempotency_key = self.idempotency_key_of(request)
        if records_in_flight().full:
            # Refused before its body is parsed: a client sending a large batch again and again
            # while the worker is busy costs it next to nothing.
            raise RecordsInFlightFull()
        envelope = audit_batch_envelope(data=request.data, max_records=settings.AUDIT_BATCH_MAX_RECORDS)
        if settings.AUTH_MODE == "tokenreview":
            writers_forbidden(request, kinds={index: kind.value for index, kind in envelope.kinds.items()})
        # From validation on, what the request holds grows with its records.
        with records_in_flight().admitted(envelope.records):
            records = audit_batch_validated(envelope=envelope)
            self.batch_kinds = tuple(record.kind for record in records)
            write = audit_batch_create(
                records=records,
                payload=request.data,
                actor=request_actor(request),
                request_id=request._request.request_id,  # type: ignore[attr-defined]
                idempotency_key=idempotency_key,
            )
        headers = {"Idempotent-Replayed": "true"} if write.replayed else {}
        return Response(write.body, status=status.HTTP_201_CREATED, headers=headers)


def _caller_of(request: Request) -> str | None:
    """Who called, for the access log, without ever triggering authentication here."""
    # DRF copies the authenticated user onto the HttpRequest; before that it is Django's lazy
    # session user, which type() (unlike isinstance) does not evaluate.
    user = getattr(request._request, "user", None)
    if type(user) is ServiceAccountUser:
        return user.username
    return LOCAL_ACTOR if settings.AUTH_MODE == "none" else None
