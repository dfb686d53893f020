"""The four audit endpoints: validate, call `audit_record_create`, shape the 201."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.exceptions import UnsupportedMediaType, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from audit.models import AuditKind
from audit.serializers import AUDIT_SERIALIZERS, audit_validated
from audit.services import audit_record_create
from kubernaut_storage.identity import request_actor

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


class AuditCreateApi(APIView):
    """POST one audit record of `audit_kind`; answers 201 once it and its embedding committed."""

    audit_kind: AuditKind = AuditKind.REMEDIATION

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
