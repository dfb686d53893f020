"""RFC 9457 problem details for every error the service answers.

Domain errors are a few exception classes; `problem_exception_handler` (DRF) and the Django
handlers below turn them, and anything unexpected, into `application/problem+json` — never an
HTML page or a stack trace.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import orjson
from django.http import HttpRequest, HttpResponse
from rest_framework import exceptions
from rest_framework.exceptions import ErrorDetail
from rest_framework.views import exception_handler

from kubernaut_storage.http.exceptions import ServiceUnavailable
from kubernaut_storage.http.renderers import problem_json_response

logger = logging.getLogger(__name__)

PROBLEM_TYPE_BASE = "https://kubernaut.ai/problems/"
#: Validation errors one 400 lists; its detail counts them all. A body of 45,000 unknown keys
#: was answered with 3.0 MB listing every one.
MAX_LISTED_ERRORS = 100
_UNKNOWN_FIELDS = "unknown_fields"


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


def unknown_fields_error(keys: list[str]) -> ErrorDetail:
    """One error standing for `Unknown field.` on each of `keys`, put under the object's
    `non_field_errors`; expanded into one listed error per key only when the answer is written.

    DRF copies every error object several times on its way up: 45,000 unknown keys (a 561 KB
    body) as as many objects cost a CPU-second before any was listed.
    """
    return ErrorDetail(orjson.dumps(keys).decode(), code=_UNKNOWN_FIELDS)


def _child_path(path: str, key: Any) -> str:
    if key in ("non_field_errors", "__all__"):
        return path
    if isinstance(key, int) or str(key).isdigit():
        return f"{path}[{key}]"  # list items (ListField and ListSerializer errors)
    return f"{path}.{key}" if path else str(key)


def _leaves(detail: Any, path: str = "") -> Iterator[tuple[str, ErrorDetail]]:
    """Every leaf of DRF's nested error structure, with its field path."""
    if isinstance(detail, dict):
        for key, value in detail.items():
            yield from _leaves(value, _child_path(path, key))
    elif isinstance(detail, list):
        leaves = all(isinstance(item, exceptions.ErrorDetail) for item in detail)
        for index, item in enumerate(detail):
            if leaves:
                yield from _leaves(item, path)
            elif item:  # ListSerializer puts {} for the valid items
                yield from _leaves(item, f"{path}[{index}]")
    else:
        yield path, detail


def validation_error_count(detail: Any) -> int:
    """How many errors `detail` lists once expanded, without expanding it."""
    return sum(
        len(orjson.loads(str(leaf))) if getattr(leaf, "code", None) == _UNKNOWN_FIELDS else 1
        for _, leaf in _leaves(detail)
    )


def validation_errors_listed(detail: Any, *, limit: int) -> tuple[list[dict[str, str]], int]:
    """The first `limit` errors as `{field, code, message}`, and how many there are in all."""
    listed: list[dict[str, str]] = []
    total = 0
    for path, leaf in _leaves(detail):
        code = str(getattr(leaf, "code", None) or "invalid")
        if code == _UNKNOWN_FIELDS:
            keys = orjson.loads(str(leaf))
            total += len(keys)
            for key in keys[: max(0, limit - len(listed))]:
                listed.append({"field": _child_path(path, key), "code": "unknown_field", "message": "Unknown field."})
            continue
        total += 1
        if len(listed) < limit:
            listed.append({"field": path, "code": code, "message": str(leaf)})
    return listed, total


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
        errors, count = validation_errors_listed(exc.detail, limit=MAX_LISTED_ERRORS)
        detail = f"The request body has {count} invalid field(s)."
        if count > len(errors):
            detail += f" The first {len(errors)} are listed."
        body = problem_body(
            status_code=400,
            code="validation_error",
            detail=detail,
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
