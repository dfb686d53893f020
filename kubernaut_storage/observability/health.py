"""Liveness and readiness probes.

`GET /healthz` answers 200 while the process can serve HTTP at all; it touches no dependency,
so a database outage never makes the kubelet restart healthy pods.

`GET /readyz` answers 200 only when a write could succeed now and for the rest of the month:
the database answers, pgvector is installed, every migration this code knows is applied, and
the current and next month's partitions exist for every partitioned table (there is no DEFAULT
partition: without them writes fail, so readiness must fail first, while there is time for
`audit_partitions_ensure`). In tokenreview mode it also needs a usable TokenReview client
configuration. While the process drains after SIGTERM it answers 503 "draining" without
checking anything, so the endpoint leaves the Service before gunicorn stops accepting.
Its body also shows what the apps register with `readiness_detail_register` (the embeddings
app: its circuit breaker's state, `embedding_circuit`), which never makes the pod unready.

Both are served by `ProbeMiddleware`, first in the stack: the kubelet sends the pod IP as Host
(not in ALLOWED_HOSTS), and probes need no session, CSRF or access-log line every few seconds.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import DatabaseError, connection
from django.db.migrations.loader import MigrationLoader
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone

from kubernaut_storage.auth.authentication import get_reviewer
from kubernaut_storage.database.lost_connections import connection_close_after_error
from kubernaut_storage.database.partitioning import (
    add_months,
    existing_partitions,
    month_start,
    partition_for,
    partitioned_tables,
)
from kubernaut_storage.http.errors import problem_body
from kubernaut_storage.http.renderers import problem_json_response
from kubernaut_storage.observability.metrics import READINESS_CHECK_FAILING

logger = logging.getLogger(__name__)

HEALTHZ_PATH = "/healthz"
READYZ_PATH = "/readyz"

OK, FAIL, SKIPPED = "ok", "fail", "skipped"

_readiness_details: dict[str, Callable[[], Any]] = {}


def readiness_detail_register(*, name: str, detail: Callable[[], Any]) -> None:
    """Show `detail()` under `name` in every /readyz body; it never makes the pod unready.

    Call from AppConfig.ready(). Registering a name again replaces its function.
    """
    _readiness_details[name] = detail


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    status: str
    detail: str = ""
    data: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"status": self.status}
        if self.detail:
            body["detail"] = self.detail
        body.update(self.data)
        return body


def _database_check() -> Check:
    try:
        _select_one()
    except DatabaseError as exc:
        # A broken connection must not be reused by the next probe or request.
        if not connection_close_after_error():
            return _database_unreachable(exc)
        # Lost while idle: the database restarted since, which says nothing of it now. The
        # pool's other broken connections are gone too; ask once more on a working one.
        try:
            _select_one()
        except DatabaseError as again:
            connection_close_after_error()
            return _database_unreachable(again)
    return Check("database", OK)


def _select_one() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()


def _database_unreachable(exc: DatabaseError) -> Check:
    # The exception text can name hosts and users; the type is enough for a probe body, the
    # log line carries the rest.
    logger.warning("readiness: database unreachable: %s", exc)
    return Check("database", FAIL, f"unreachable ({type(exc).__name__})")


def _pgvector_check() -> Check:
    with connection.cursor() as cursor:
        cursor.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'")
        row = cursor.fetchone()
    if row is None:
        return Check("pgvector", FAIL, "extension 'vector' is not installed")
    return Check("pgvector", OK, data={"version": row[0]})


def _migrations_check() -> Check:
    # Every migration this code knows, not just a plan towards the leaves: a plan is empty when
    # the leaves are recorded as applied even though an earlier migration is not.
    loader = MigrationLoader(connection, ignore_no_migrations=True)
    pending = sorted(
        f"{app}.{name}" for app, name in loader.graph.nodes if (app, name) not in loader.applied_migrations
    )
    if pending:
        return Check("migrations", FAIL, f"{len(pending)} unapplied", data={"unapplied": pending})
    return Check("migrations", OK)


def _partitions_check(now: dt.datetime) -> Check:
    this_month = month_start(now)
    months = (this_month, add_months(this_month, 1))
    missing = []
    for table in partitioned_tables():
        present = existing_partitions(table)
        expected = [partition_for(table, month).name for month in months]
        missing += [name for name in expected if name not in present]
    if missing:
        return Check(
            "partitions",
            FAIL,
            "missing for this or next month; run manage.py audit_partitions_ensure",
            data={"missing": missing},
        )
    return Check("partitions", OK, data={"months": [f"{month:%Y-%m}" for month in months]})


def _tokenreview_check() -> Check:
    # Builds the client configuration only (no API call): a pod without its ServiceAccount
    # token or CA would otherwise be ready and answer 500 to every write.
    try:
        get_reviewer()
    except ImproperlyConfigured as exc:
        return Check("tokenreview", FAIL, str(exc))
    return Check("tokenreview", OK)


def readiness_checks(*, now: dt.datetime) -> list[Check]:
    """Every readiness check, in dependency order; later database checks are skipped when it is down."""
    checks = [_database_check()]
    database_checks: list[tuple[str, Callable[[], Check]]] = [
        ("pgvector", _pgvector_check),
        ("migrations", _migrations_check),
        ("partitions", lambda: _partitions_check(now)),
    ]
    for name, check in database_checks:
        if checks[0].status != OK:
            checks.append(Check(name, SKIPPED, "database unreachable"))
            continue
        try:
            checks.append(check())
        except DatabaseError as exc:  # the database went away between two checks
            logger.warning("readiness: %s check failed: %s", name, exc)
            connection_close_after_error()
            checks.append(Check(name, FAIL, f"query failed ({type(exc).__name__})"))
    if settings.AUTH_MODE == "tokenreview":
        checks.append(_tokenreview_check())
    return checks


_cached_checks: tuple[float, list[Check]] | None = None
_cached_checks_lock = threading.Lock()


def readiness_checks_cached() -> list[Check]:
    """`readiness_checks`, computed at most once per READYZ_CACHE_SECONDS in this process.

    /readyz is unauthenticated and costs ~6 queries: a flood of it raised the write p50 to
    174 ms. Concurrent probes wait for the one computation under way instead of each running it.
    """
    global _cached_checks
    with _cached_checks_lock:
        now = time.monotonic()
        if _cached_checks is not None and now - _cached_checks[0] < settings.READYZ_CACHE_SECONDS:
            return _cached_checks[1]
        checks = readiness_checks(now=timezone.now())
        _cached_checks = (now, checks)
        return checks


def draining() -> bool:
    """True once gunicorn's master got SIGTERM (kubernaut_storage/serving/hooks.py)."""
    return bool(settings.DRAIN_FILE) and os.path.exists(settings.DRAIN_FILE)


_last_ready: bool | None = None
_last_ready_lock = threading.Lock()


def _log_transition(ready: bool, failing: list[str]) -> None:
    # Probes come every few seconds; log when readiness changes, not on every probe.
    global _last_ready
    with _last_ready_lock:
        previous, _last_ready = _last_ready, ready
    if previous is False and ready:
        logger.info("readiness: ready again")
    elif previous is not False and not ready:
        logger.warning("readiness: not ready: %s", ", ".join(failing))


def healthz(request: HttpRequest) -> HttpResponse:
    return JsonResponse({"status": "ok"})


def readyz(request: HttpRequest) -> HttpResponse:
    if draining():
        body = problem_body(
            status_code=503, code="draining", detail="Shutting down; not accepting new work.", instance=request.path
        )
        body["checks"] = {}
        return problem_json_response(body, status=503)

    checks = readiness_checks_cached()
    failing = [check.name for check in checks if check.status != OK]
    for check in checks:
        if check.status != SKIPPED:
            READINESS_CHECK_FAILING.labels(check=check.name).set(0 if check.status == OK else 1)
    _log_transition(not failing, failing)
    report = {check.name: check.as_json() for check in checks}
    details = {name: detail() for name, detail in _readiness_details.items()}
    if not failing:
        return JsonResponse({"status": "ready", "checks": report, **details})
    body = problem_body(
        status_code=503,
        code="not_ready",
        detail="Failing: " + ", ".join(check.name for check in checks if check.status == FAIL),
        instance=request.path,
    )
    body["checks"] = report
    body.update(details)
    response = problem_json_response(body, status=503)
    response["Retry-After"] = "5"
    return response


class ProbeMiddleware:
    """Serves /healthz and /readyz ahead of every other middleware (see the module docstring)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.method in ("GET", "HEAD"):
            if request.path == HEALTHZ_PATH:
                return _unlogged(healthz(request))
            if request.path == READYZ_PATH:
                return _unlogged(readyz(request))
        return self.get_response(request)


def _unlogged(response: HttpResponse) -> HttpResponse:
    # A not-ready pod answers 503 to every probe; Django would log each one on django.request.
    response._has_been_logged = True  # type: ignore[attr-defined]
    # CommonMiddleware, which would add it, does not run for probes.
    response["Content-Length"] = str(len(response.content))
    return response
