"""Request ids and the access log.

Request ids are taken from `X-Request-ID` when the caller sends a sane one, made otherwise,
stored on the request and echoed in the response so both sides can find the same log line.

The access log is one JSON line per request plus the latency histogram and the
auth-failure counter: everything that is known only once the response exists.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Callable
from typing import Any

from django.http import HttpRequest, HttpResponse

from kubernaut_storage.observability.metrics import AUTH_FAILURES, REQUEST_LATENCY

_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")

access_logger = logging.getLogger("kubernaut_storage.access")

# Label values must stay a small fixed set: a client inventing methods must not mint series.
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_MAX_LOGGED_PATH = 256


def request_id_for(request: HttpRequest) -> str:
    offered = request.headers.get("X-Request-ID", "")
    # A caller-chosen id goes into logs and the audit row: accept only a bounded, inert one.
    return offered if _SAFE_REQUEST_ID.match(offered) else uuid.uuid4().hex


class RequestIdMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request.request_id = request_id_for(request)  # type: ignore[attr-defined]
        response = self.get_response(request)
        response["X-Request-ID"] = request.request_id  # type: ignore[attr-defined]
        return response


def log_fields_add(request: HttpRequest, **fields: str | None) -> None:
    """Add fields (correlation id, caller) to this request's access-log line.

    Views know what the middleware cannot see: the parsed body and the authenticated caller.
    """
    existing: dict[str, Any] = request.__dict__.setdefault("log_fields", {})
    existing.update({key: value for key, value in fields.items() if value is not None})


def endpoint_of(request: HttpRequest) -> str:
    """The matched URL pattern, not the raw path, so metrics stay bounded under any traffic."""
    match = request.resolver_match
    return "/" + match.route if match is not None and match.route else "unmatched"


class RequestLogMiddleware:
    """One `kubernaut_storage.access` line per request; latency and auth failures as metrics.

    Logs no headers, no query string and no body: a bearer token or a payload never reaches
    the log. Django would log every 4xx/5xx a second time on `django.request`; the response is
    marked as logged so it does not.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        response = self.get_response(request)
        elapsed = time.perf_counter() - started

        endpoint = endpoint_of(request)
        method = request.method if request.method in _METHODS else "other"
        status = response.status_code
        REQUEST_LATENCY.labels(endpoint=endpoint, method=method, status=f"{status // 100}xx").observe(elapsed)
        # Set by kubernaut_storage.auth.authentication on every 401/403/503 it raises.
        reason = getattr(request, "auth_failure_reason", None)
        if reason:
            AUTH_FAILURES.labels(reason=reason).inc()

        fields: dict[str, Any] = {
            "request_id": getattr(request, "request_id", None),
            "correlation_id": None,
            "caller": None,
            "method": method,
            "endpoint": endpoint,
            "path": request.path[:_MAX_LOGGED_PATH],
            "status": status,
            "latency_ms": round(elapsed * 1000, 2),
        }
        fields.update(request.__dict__.get("log_fields", {}))
        if reason:
            fields["auth_failure"] = reason
        level = logging.WARNING if status >= 500 else logging.INFO
        access_logger.log(level, "%s %s %d", method, fields["path"], status, extra=fields)
        # django.utils.log.log_response skips responses that carry this mark.
        response._has_been_logged = True  # type: ignore[attr-defined]
        return response
