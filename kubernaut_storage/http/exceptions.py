"""The service's own API errors; `errors.problem_exception_handler` renders them as RFC 9457.

Kept apart from the handler because DRF imports the parser (which raises these) while it
loads its settings, before the handler's own imports could finish.
"""

from __future__ import annotations

from rest_framework import exceptions, status


class PayloadTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "The request body is larger than the limit."
    default_code = "payload_too_large"


class RequestBodyIncomplete(exceptions.APIException):
    """The client stopped sending the body, or did not finish it by the request's read deadline."""

    status_code = status.HTTP_400_BAD_REQUEST
    default_detail = "The request body did not arrive completely."
    default_code = "body_incomplete"


class IdempotencyKeyReused(exceptions.APIException):
    status_code = status.HTTP_422_UNPROCESSABLE_ENTITY
    default_detail = "This Idempotency-Key was already used with a different request body."
    default_code = "idempotency_key_reused"


class IdempotencyKeyInFlight(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "A request with this Idempotency-Key is still being processed; retry shortly."
    default_code = "idempotency_key_in_flight"


class ServiceUnavailable(exceptions.APIException):
    """A dependency is down; the caller should retry after `retry_after` seconds."""

    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = "The database is unavailable; the record was not stored. Retry later."
    default_code = "database_unavailable"
    retry_after = 5


class BatchTooLarge(exceptions.APIException):
    """More records in one batch than AUDIT_BATCH_MAX_RECORDS: the caller splits it and retries."""

    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "The batch holds more records than the limit."
    default_code = "batch_too_large"
