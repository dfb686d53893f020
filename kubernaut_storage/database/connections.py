"""The request's pooled connection: a cursor that binds parameters on the server, and giving the
connection back to the pool while the request waits on something else.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Protocol, runtime_checkable

import orjson
import psycopg
from django.db import connection
from django.db.backends.utils import CursorWrapper
from django_prometheus.db.common import ExportingCursorWrapper
from pgvector.psycopg.vector import register_vector_info
from psycopg.types import TypeInfo
from psycopg.types.json import Jsonb


def jsonb(value: Any) -> Jsonb:
    # orjson, not the stdlib encoder the ORM's JSONField uses: same JSON, several times faster.
    return Jsonb(value, dumps=orjson.dumps)


#: The server-binding cursor, counted and timed in django-prometheus' database series like
#: every cursor the backend makes.
ServerBindingCursor = ExportingCursorWrapper(psycopg.Cursor, "default", "postgresql")

#: Connections whose psycopg adapters know pgvector's `vector` type (looked up once each).
_vector_connections: weakref.WeakSet[psycopg.Connection[Any]] = weakref.WeakSet()


@contextmanager
def server_binding_cursor() -> Iterator[CursorWrapper]:
    """A Django cursor (errors wrapped, queries logged when Django logs them) whose psycopg
    cursor binds parameters on the server: binary parameters and prepared statements, which
    the client-side binding cursor Django's PostgreSQL backend uses by default cannot do."""
    connection.ensure_connection()
    raw = connection.connection
    with connection.wrap_database_errors:
        if raw not in _vector_connections:
            register_vector_info(raw, TypeInfo.fetch(raw, "vector"))
            _vector_connections.add(raw)
        cursor = ServerBindingCursor(raw)
    # (django-stubs type these as taking a CursorWrapper; they take the driver's cursor.)
    make = connection.make_debug_cursor if connection.queries_logged else connection.make_cursor
    wrapped = make(cursor)  # type: ignore[arg-type]
    with wrapped:
        yield wrapped


@runtime_checkable
class SessionStateWrapper(Protocol):
    """An execute wrapper that sets session state on the connections it runs on (e.g. a
    statement_timeout) and can undo it on this thread's connection."""

    def reset(self) -> None: ...


def connection_release() -> None:
    """Give this request's pooled connection back now; a later query takes another.

    For a request about to wait on something slow without the database: an embedding (up to
    ~100 ms and more, against a few ms of SQL) or a password hash (a good part of a second).
    Held, the pool would run dry with threads that only wait. Session state an execute wrapper
    of this request set is undone first, so the next borrower does not inherit it. Inside a
    transaction (the tests' own, an atomic view) the connection must stay; without a pool
    there is nothing to give back.
    """
    if getattr(connection, "pool", None) is None or connection.in_atomic_block:
        return
    for wrapper in connection.execute_wrappers:
        if isinstance(wrapper, SessionStateWrapper):
            wrapper.reset()
    connection.close()
