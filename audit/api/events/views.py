"""The audit-event endpoints of upstream Kubernaut's API: `POST /api/v1/audit/events` (one
event) and `POST /api/v1/audit/events/batch` (many, all or nothing).

Answers are upstream's (docs/UPSTREAM.md): 201 with the event ids in input order, 400 only for
events that can never be valid, 503 with Retry-After for anything a retry of the same bytes
can cure. Never 202 (upstream's client cannot decode it and stores the batch twice) nor 429
(its client drops the batch).
"""

from __future__ import annotations

import time
from typing import Any, ClassVar

from django.conf import settings
from django.utils import timezone
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.parsers import BaseParser
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.response import Response

from audit.api.events.parsers import BODY_SHA256_ATTRIBUTE, EventJSONParser
from audit.api.events.problems import event_problem_exception_handler
from audit.api.events.serializers import (
    AuditEventRequestSerializer,
    ValidatedEvent,
    audit_event_validated,
    audit_events_validated,
)
from audit.api.openapi import WRITE_HEADERS, write_responses
from audit.api.views import AuditWriteApi
from audit.write.events import audit_events_create
from audit.write.records_in_flight import records_in_flight
from kubernaut_storage.auth.authentication import AccessReviewed, AllowedServiceAccounts
from kubernaut_storage.auth.identity import request_actor
from kubernaut_storage.observability.metrics import AUDIT_WRITES, VALIDATION_FAILURES

#: The allow-list (AUDIT_WRITERS) and the metrics' `kind` label of audit events.
EVENTS_KIND = "events"

AuditEventResponseSerializer = inline_serializer(
    "AuditEventResponse",
    fields={
        "event_id": serializers.UUIDField(),
        "event_timestamp": serializers.DateTimeField(),
        "message": serializers.CharField(),
    },
)
BatchAuditEventResponseSerializer = inline_serializer(
    "BatchAuditEventResponse",
    fields={"event_ids": serializers.ListField(child=serializers.UUIDField()), "message": serializers.CharField()},
)


class AuditEventWriteApi(AuditWriteApi):
    """What the two endpoints share: their parser, their problems, their allow-list."""

    parser_classes: ClassVar[list[type[BaseParser]]] = [EventJSONParser]  # type: ignore[misc]
    audit_kind = EVENTS_KIND
    #: Events stored by a 201, for the metrics.
    events_stored = 0

    def get_permissions(self) -> list[BasePermission]:
        if settings.AUTH_MODE != "tokenreview":
            return []
        # Upstream's Data Storage asks for `create` on its Service; AUTHZ_MODE=sar does the same.
        return [AccessReviewed("create") if settings.AUTHZ_MODE == "sar" else AllowedServiceAccounts()]

    def get_exception_handler(self) -> Any:
        return event_problem_exception_handler

    def outcome_count(self, response: Response, outcome: str) -> None:
        AUDIT_WRITES.labels(kind=EVENTS_KIND, outcome=outcome).inc(self.events_stored or 1)
        if response.status_code == status.HTTP_400_BAD_REQUEST:
            VALIDATION_FAILURES.labels(kind=EVENTS_KIND).inc()

    def created(
        self, request: Request, *, events: list[ValidatedEvent], single: bool, idempotency_key: str | None
    ) -> Response:
        write = audit_events_create(
            events=events,
            single=single,
            recorded_at=self.received_at,
            actor=request_actor(request),
            request_id=request._request.request_id,  # type: ignore[attr-defined]
            body_sha256=getattr(request._request, BODY_SHA256_ATTRIBUTE),
            idempotency_key=idempotency_key,
            dedupe_seconds=settings.AUDIT_EVENTS_DEDUPE_SECONDS,
        )
        self.events_stored = len(events)
        # The single answer names its event's correlation id, as the typed single endpoints do.
        headers = {"X-Correlation-ID": events[0].columns["correlation_id"]} if single else {}
        if write.replayed:
            headers["Idempotent-Replayed"] = "true"
        return Response(write.body, status=status.HTTP_201_CREATED, headers=headers)

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        # The receive time: the events' timestamp window and their `recorded_at`.
        self.received_at = timezone.now()
        super().initial(request, *args, **kwargs)


class AuditEventCreateApi(AuditEventWriteApi):
    """POST one audit event; 201 `{event_id, event_timestamp, message}` once it committed."""

    @extend_schema(
        request=AuditEventRequestSerializer,
        parameters=WRITE_HEADERS,
        responses=write_responses(AuditEventResponseSerializer),
        operation_id="createAuditEvent",
    )
    def post(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        idempotency_key = self.idempotency_key_of(request)
        event = audit_event_validated(data=request.data, now=self.received_at)
        return self.created(request, events=[event], single=True, idempotency_key=idempotency_key)


class AuditEventBatchCreateApi(AuditEventWriteApi):
    """POST 1 to AUDIT_EVENTS_BATCH_MAX audit events; 201 `{event_ids, message}` once all
    committed, or nothing stored."""

    @extend_schema(
        request=AuditEventRequestSerializer(many=True),
        parameters=WRITE_HEADERS,
        responses=write_responses(BatchAuditEventResponseSerializer),
        operation_id="createAuditEventsBatch",
    )
    def post(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        idempotency_key = self.idempotency_key_of(request)
        # Upstream's client retries a 503 only twice before it drops the batch, so a batch waits
        # a while for room (AUDIT_EVENTS_ADMISSION_WAIT_SECONDS), first before its body is
        # parsed: a waiting request holds its bytes, never their parsed form.
        wait_s = settings.AUDIT_EVENTS_ADMISSION_WAIT_SECONDS
        started = time.monotonic()
        records_in_flight().room_awaited(wait_s=wait_s)
        data = request.data
        held = len(data) if isinstance(data, list) else 1
        with records_in_flight().admitted(held, wait_s=max(0.0, wait_s - (time.monotonic() - started))):
            events = audit_events_validated(data=data, now=self.received_at, max_events=settings.AUDIT_EVENTS_BATCH_MAX)
            return self.created(request, events=events, single=False, idempotency_key=idempotency_key)
