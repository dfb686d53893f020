"""The audit-event endpoints' errors: RFC 7807 problem+json with upstream Kubernaut's `type`s.

Upstream's client reads only the status (docs/UPSTREAM.md): 400 drops the batch, 401/403 and
5xx are retried. The body is for people: upstream's `type` URIs and titles, its `field_errors`
(path → first message), and the service's own `errors` list (every problem, path, code and
message, the first MAX_REPORTED_ERRORS of them) with `errors_total`.
"""

from __future__ import annotations

from typing import Any

import orjson
from django.http import HttpResponse
from rest_framework import exceptions

from audit.api.events.serializers import EventBatchSizeInvalid, EventsInvalid
from kubernaut_storage.http.errors import PROBLEM_TYPE_BASE, problem_exception_handler
from kubernaut_storage.http.exceptions import IdempotencyKeyInFlight, ServiceUnavailable
from kubernaut_storage.http.renderers import problem_json_response

#: (type, title) by status, as upstream names them; other statuses keep the service's own.
_UPSTREAM_PROBLEMS = {
    400: ("bad-request", "Bad Request"),
    401: ("unauthorized", "Unauthorized"),
    403: ("forbidden", "Forbidden"),
    500: ("internal-error", "Internal Server Error"),
    503: ("service-unavailable", "Service Unavailable"),
}
VALIDATION_PROBLEM = ("validation-error", "Validation Error")
BATCH_SIZE_PROBLEM = ("batch-size-exceeded", "Batch Size Exceeded")
_COPIED_HEADERS = ("WWW-Authenticate", "Retry-After", "Allow")


class StillBeingStored(ServiceUnavailable):
    """The same request (its Idempotency-Key, or the same bytes) is being stored right now, or a
    lock on the table was not granted in time: nothing was stored by this request."""

    default_detail = "The same request is still being stored, or the table is busy; nothing was stored. Retry shortly."
    default_code = "still_being_stored"
    retry_after = 1


def event_problem_exception_handler(exc: Exception, context: dict[str, Any]) -> HttpResponse | None:
    """The service's problem+json (problem_exception_handler), in upstream's terms."""
    if isinstance(exc, IdempotencyKeyInFlight):
        # Upstream's client drops a batch answered 409; by the retry the first attempt has
        # committed or rolled back, and the same bytes get its answer or are stored.
        exc = StillBeingStored()
    response = problem_exception_handler(exc, context)
    if response is None:  # pragma: no cover - the service's handler answers every exception
        return None
    body: dict[str, Any] = orjson.loads(response.content)
    if isinstance(exc, EventsInvalid):
        problem_type, title = BATCH_SIZE_PROBLEM if isinstance(exc, EventBatchSizeInvalid) else VALIDATION_PROBLEM
        body["detail"] = f"{exc.error_count} invalid field(s); nothing was stored."
        if exc.error_count > len(exc.errors):
            body["detail"] += f" The first {len(exc.errors)} are listed."
        field_errors: dict[str, str] = {}
        for error in exc.errors:
            if error.field:
                field_errors.setdefault(error.field, error.message)
        if field_errors:
            body["field_errors"] = field_errors
        body["errors"] = [{"field": e.field, "code": e.code, "message": e.message} for e in exc.errors]
        body["errors_total"] = exc.error_count
    elif isinstance(exc, exceptions.ValidationError):
        # A header (Idempotency-Key) rather than the events: still a field error.
        problem_type, title = VALIDATION_PROBLEM
        body["errors_total"] = len(body.get("errors", []))
    elif response.status_code in _UPSTREAM_PROBLEMS:
        problem_type, title = _UPSTREAM_PROBLEMS[response.status_code]
    else:
        return response
    body["type"] = PROBLEM_TYPE_BASE + problem_type
    body["title"] = title
    problem = problem_json_response(body, status=response.status_code)
    for header in _COPIED_HEADERS:
        if header in response:
            problem[header] = response[header]
    return problem
