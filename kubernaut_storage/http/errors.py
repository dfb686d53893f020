"""RFC 9457 problem details for every error the service answers.

Domain errors are a few exception classes; `problem_exception_handler` (DRF) and the Django
handlers below turn them, and anything unexpected, into `application/problem+json` — never an
HTML page or a stack trace.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

from django.http import HttpRequest, HttpResponse
from rest_framework import exceptions
from rest_framework.views import exception_handler

from kubernaut_storage.http.exceptions import ServiceUnavailable
from kubernaut_storage.http.renderers import problem_json_response

logger = logging.getLogger(__name__)

PROBLEM_TYPE_BASE = "https://kubernaut.ai/problems/"


_TITLES = {
    400: "Invalid request",
    401: "Authentication required",
    403: "Not allowed",
    404: "Not found",
    405: "Method not allowed",
    406: "Not acceptable",
    409: "Conflict",
    413: "Request body too large",
    415: "Unsupported media type",
    422: "Idempotency key reused",
    500: "Internal server error",
    503: "Service unavailable",
}


def problem_body(
    *, status_code: int, code: str, detail: str, instance: str, correlation_id: str | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": PROBLEM_TYPE_BASE + code.replace("_", "-"),
        "title": _TITLES.get(status_code, "Error"),
        "status": status_code,
        "detail": detail,
        "instance": instance,
    }
    if correlation_id:
        body["correlationId"] = correlation_id
    return body


def flatten_validation_errors(detail: Any, path: str = "") -> Iterator[dict[str, str]]:
    """Yield `{field, code, message}` for every leaf of DRF's nested error structure."""
    if isinstance(detail, dict):
        for key, value in detail.items():
            if key in ("non_field_errors", "__all__"):
                child = path
            elif isinstance(key, int) or str(key).isdigit():
                child = f"{path}[{key}]"  # list items (ListField and ListSerializer errors)
            elif path:
                child = f"{path}.{key}"
            else:
                child = str(key)
            yield from flatten_validation_errors(value, child)
    elif isinstance(detail, list):
        leaves = all(isinstance(item, exceptions.ErrorDetail) for item in detail)
        for index, item in enumerate(detail):
            if leaves:
                yield from flatten_validation_errors(item, path)
            elif item:  # ListSerializer puts {} for the valid items
                yield from flatten_validation_errors(item, f"{path}[{index}]")
    else:
        code = getattr(detail, "code", None) or "invalid"
        yield {"field": path, "code": str(code), "message": str(detail)}


def correlation_id_of(request: Any) -> str | None:
    """The body's correlationId once DRF parsed it (a DRF Request), else None."""
    data = getattr(request, "_full_data", None)
    if isinstance(data, dict):
        value = data.get("correlationId")
        if isinstance(value, str) and len(value) <= 255:
            return value
    return None


def problem_exception_handler(exc: Exception, context: dict[str, Any]) -> HttpResponse | None:
    """DRF's EXCEPTION_HANDLER: every API error becomes problem+json."""
    request = context.get("request")
    instance = request.path if request is not None else ""
    correlation_id = correlation_id_of(request)

    response = exception_handler(exc, context)
    if response is None:
        # Not an APIException: a true bug. Logged with its traceback, answered without one.
        logger.exception("unhandled error on %s", instance, exc_info=exc)
        body = problem_body(
            status_code=500,
            code="internal_error",
            detail="An unexpected error occurred; it has been logged.",
            instance=instance,
            correlation_id=correlation_id,
        )
        return problem_json_response(body, status=500)

    assert isinstance(exc, exceptions.APIException)
    if isinstance(exc, exceptions.ValidationError):
        errors = list(flatten_validation_errors(exc.detail))
        body = problem_body(
            status_code=400,
            code="validation_error",
            detail=f"The request body has {len(errors)} invalid field(s).",
            instance=instance,
            correlation_id=correlation_id,
        )
        body["errors"] = errors
    else:
        detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        codes = exc.get_codes()
        body = problem_body(
            status_code=response.status_code,
            code=codes if isinstance(codes, str) else exc.default_code,
            detail=str(detail),
            instance=instance,
            correlation_id=correlation_id,
        )
    problem = problem_json_response(body, status=response.status_code)
    for header in ("WWW-Authenticate", "Retry-After", "Allow"):
        if header in response:
            problem[header] = response[header]
    if isinstance(exc, ServiceUnavailable) or response.status_code == 503:
        problem["Retry-After"] = str(getattr(exc, "retry_after", None) or ServiceUnavailable.retry_after)
    return problem


def _django_problem(request: HttpRequest, status_code: int, code: str, detail: str) -> HttpResponse:
    body = problem_body(status_code=status_code, code=code, detail=detail, instance=request.path)
    return problem_json_response(body, status=status_code)


def handler400(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return _django_problem(request, 400, "bad_request", "The request could not be understood.")


def handler403(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return _django_problem(request, 403, "forbidden", "Not allowed.")


def handler404(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return _django_problem(request, 404, "not_found", "No such resource.")


def handler500(request: HttpRequest) -> HttpResponse:
    return _django_problem(request, 500, "internal_error", "An unexpected error occurred; it has been logged.")
