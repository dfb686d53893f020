"""What the admin's requests may cost the database, and what they may carry.

- A NUL byte anywhere in an admin URL or query string answers 400: PostgreSQL text cannot hold
  one, so it would otherwise fail inside a query as a 500.
- Every query of an admin request runs under `statement_timeout` (ADMIN_STATEMENT_TIMEOUT_SECONDS):
  nothing an auditor types can hold the database longer. It is set on the request's connection
  at its first query and reset before the connection goes back to the pool, which the write
  path shares.
- The timeout is undone when kubernaut_storage/database/connections.py's `connection_release`
  hands the request's pooled connection back early, e.g. before a password hash that takes a
  good part of a second: a login flood must not hold the pool.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import psycopg
from django.conf import settings
from django.db import DatabaseError, connection
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest

ADMIN_PREFIX = "/admin/"


def _carries_nul(request: HttpRequest) -> bool:
    return "\x00" in request.path or any(
        "\x00" in key or any("\x00" in value for value in values) for key, values in request.GET.lists()
    )


class _StatementTimeout:
    """An execute wrapper that sets the timeout on each connection the request uses, once."""

    def __init__(self, timeout_ms: int) -> None:
        self.timeout_ms = timeout_ms
        self.applied_to: Any = None  # the driver connection it is set on

    def __call__(self, execute: Callable[..., Any], sql: str, params: Any, many: bool, context: dict[str, Any]) -> Any:
        raw = context["connection"].connection
        if raw is not self.applied_to:
            self.applied_to = raw
            # The driver's cursor, not Django's: Django's would run this wrapper again.
            context["cursor"].cursor.execute(f"SET statement_timeout = {int(self.timeout_ms)}")
        return execute(sql, params, many, context)

    def reset(self) -> None:
        raw = connection.connection
        if raw is None or raw is not self.applied_to:
            return
        self.applied_to = None
        # A connection in a failed transaction is rolled back (and the setting with it) or
        # discarded by the pool; nothing else can be done here.
        # The driver's cursor again: Django's would run the wrapper, which would set it anew.
        with contextlib.suppress(DatabaseError, psycopg.Error), connection.cursor() as cursor:
            cursor.cursor.execute("RESET statement_timeout")


class AdminGuardMiddleware:
    """Refuses NUL bytes and bounds query time for every request under /admin/."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not request.path.startswith(ADMIN_PREFIX):
            return self.get_response(request)
        if _carries_nul(request):
            return HttpResponseBadRequest("NUL bytes are not allowed in admin URLs.", content_type="text/plain")
        timeout = _StatementTimeout(round(settings.ADMIN_STATEMENT_TIMEOUT_SECONDS * 1000))
        try:
            with connection.execute_wrapper(timeout):
                return self.get_response(request)
        finally:
            timeout.reset()
