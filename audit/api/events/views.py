"""The audit-event endpoints of upstream Kubernaut's API: `POST /api/v1/audit/events` (one
event) and `POST /api/v1/audit/events/batch` (many, all or nothing).

Answers are upstream's (docs/UPSTREAM.md): 201 with the event ids in input order, 400 only for
events that can never be valid, 503 with Retry-After for anything a retry of the same bytes
can cure. Never 202 (upstream's client cannot decode it and stores the batch twice) nor 429
(its client drops the batch).
"""

from __future__ import annotations

from typing import Any, ClassVar

from django.conf import settings
from django.utils import timezone
from rest_framework import status
from rest_framework.parsers import BaseParser
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.response import Response

from audit.api.events.parsers import BODY_SHA256_ATTRIBUTE, EventJSONParser
from audit.api.events.problems import event_problem_exception_handler
from audit.api.events.serializers import (
    AuditEventRequestSerializer,
    audit_event_validated,
    audit_events_validated,
)
from audit.api.views import AuditWriteApi
from audit.write.events import audit_events_create
from audit.write.records_in_flight import RecordsInFlightFull, records_in_flight
from kubernaut_storage.auth.authentication import AllowedServiceAccounts
from kubernaut_storage.auth.identity import request_actor
from kubernaut_storage.observability.metrics import AUDIT_WRITES, VALIDATION_FAILURES

#: The allow-list (AUDIT_WRITERS) and the metrics' `kind` label of audit events.
EVENTS_KIND = "events"


class AuditEventWriteApi(AuditWriteApi):
    """What the two endpoints share: their parser, their problems, their allow-list."""

    parser_classes: ClassVar[list[type[BaseParser]]] = [EventJSONParser]  # type: ignore[misc]
    audit_kind = EVENTS_KIND
    #: Events stored by a 201, for the metrics.
    events_stored = 0

    def get_permissions(self) -> list[BasePermission]:
        return [AllowedServiceAccounts()] if settings.AUTH_MODE == "tokenreview" else []

    def get_exception_handler(self) -> Any:
        return event_problem_exception_handler

    def outcome_count(self, response: Response, outcome: str) -> None:
        AUDIT_WRITES.labels(kind=EVENTS_KIND, outcome=outcome).inc(self.events_stored or 1)
        if response.status_code == status.HTTP_400_BAD_REQUEST:
            VALIDATION_FAILURES.labels(kind=EVENTS_KIND).inc()

    def created(self, request: Request, *, events: list[Any], single: bool, idempotency_key: str | None) -> Response:
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
        headers = {"Idempotent-Replayed": "true"} if write.replayed else {}
        return Response(write.body, status=status.HTTP_201_CREATED, headers=headers)

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        # The receive time: the events' timestamp window and their `recorded_at`.
        self.received_at = timezone.now()
        super().initial(request, *args, **kwargs)


class AuditEventCreateApi(AuditEventWriteApi):
    """POST one audit event; 201 `{event_id, event_timestamp, message}` once it committed."""

    serializer_class = AuditEventRequestSerializer

    def post(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        idempotency_key = self.idempotency_key_of(request)
        event = audit_event_validated(data=request.data, now=self.received_at)
        return self.created(request, events=[event], single=True, idempotency_key=idempotency_key)


class AuditEventBatchCreateApi(AuditEventWriteApi):
    """POST 1 to AUDIT_EVENTS_BATCH_MAX audit events; 201 `{event_ids, message}` once all
    committed, or nothing stored."""

    def post(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        idempotency_key = self.idempotency_key_of(request)
        if records_in_flight().full:
            # Refused before its body is parsed: a retrying client costs next to nothing.
            raise RecordsInFlightFull()
        data = request.data
        held = len(data) if isinstance(data, list) else 1
        with records_in_flight().admitted(held):
            events = audit_events_validated(data=data, now=self.received_at, max_events=settings.AUDIT_EVENTS_BATCH_MAX)
            return self.created(request, events=events, single=False, idempotency_key=idempotency_key)
