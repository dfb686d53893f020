"""The four audit endpoints: authenticate, validate, call `audit_record_create`, shape the 201."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.authentication import BaseAuthentication
from rest_framework.exceptions import UnsupportedMediaType, ValidationError
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from audit.models import AuditKind
from audit.serializers import AUDIT_SERIALIZERS, audit_validated
from audit.services import audit_record_create
from kubernaut_storage.auth import AllowedServiceAccounts, KubernetesTokenAuthentication, ServiceAccountUser
from kubernaut_storage.errors import correlation_id_of
from kubernaut_storage.identity import LOCAL_ACTOR, request_actor
from kubernaut_storage.metrics import AUDIT_WRITES, VALIDATION_FAILURES
from kubernaut_storage.middleware import log_fields_add

MAX_IDEMPOTENCY_KEY_LENGTH = 255

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
_PROBLEM = OpenApiResponse(description="RFC 9457 problem details (application/problem+json)")


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


class AuditCreateApi(APIView):
    """POST one audit record of `audit_kind`; answers 201 once it and its embedding committed."""

    audit_kind: AuditKind = AuditKind.REMEDIATION

    # Read per request, not at import: AUTH_MODE is a setting (and tests override it).
    def get_authenticators(self) -> list[BaseAuthentication]:
        return [KubernetesTokenAuthentication()] if settings.AUTH_MODE == "tokenreview" else []

    def get_permissions(self) -> list[BasePermission]:
        return [AllowedServiceAccounts()] if settings.AUTH_MODE == "tokenreview" else []

    def finalize_response(self, request: Request, response: Response, *args: Any, **kwargs: Any) -> Response:
        # Every answer passes here, errors included: the one place to count outcomes.
        response = super().finalize_response(request, response, *args, **kwargs)
        if request.method == "POST":
            outcome = write_outcome(
                status_code=response.status_code, replayed=response.get("Idempotent-Replayed") == "true"
            )
            AUDIT_WRITES.labels(kind=self.audit_kind.value, outcome=outcome).inc()
            if response.status_code == status.HTTP_400_BAD_REQUEST:
                VALIDATION_FAILURES.labels(kind=self.audit_kind.value).inc()
        log_fields_add(request._request, correlation_id=correlation_id_of(request), caller=_caller_of(request))
        return response

    def get_serializer_class(self) -> type[serializers.Serializer]:
        # drf-spectacular reads the request body schema from here, per endpoint.
        return AUDIT_SERIALIZERS[self.audit_kind]

    @extend_schema(
        parameters=[
            OpenApiParameter("Idempotency-Key", str, OpenApiParameter.HEADER, required=False),
            OpenApiParameter("X-Request-ID", str, OpenApiParameter.HEADER, required=False),
        ],
        responses={
            201: AuditCreatedSerializer,
            **{code: _PROBLEM for code in (400, 401, 403, 409, 413, 415, 422, 503)},
        },
    )
    def post(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        if request.content_type.split(";")[0].strip().lower() != "application/json":
            raise UnsupportedMediaType(request.content_type or "(none)")
        idempotency_key = request.headers.get("Idempotency-Key")
        if idempotency_key is not None and not 1 <= len(idempotency_key) <= MAX_IDEMPOTENCY_KEY_LENGTH:
            raise ValidationError({"Idempotency-Key": [f"Must be 1-{MAX_IDEMPOTENCY_KEY_LENGTH} characters."]})

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


def _caller_of(request: Request) -> str | None:
    """Who called, for the access log, without ever triggering authentication here."""
    # DRF copies the authenticated user onto the HttpRequest; before that it is Django's lazy
    # session user, which type() (unlike isinstance) does not evaluate.
    user = getattr(request._request, "user", None)
    if type(user) is ServiceAccountUser:
        return user.username
    return LOCAL_ACTOR if settings.AUTH_MODE == "none" else None
