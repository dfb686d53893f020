"""Closing this thread's connection after a database error, and what a lost one says about the pool.

A database that restarted broke every connection the pool holds idle, and nothing notices until
each is used (checking every checkout would cost a round trip per request): after an outage
nobody saw, the next requests would each fail once on one of them, and a readiness probe every
few seconds would stay failing for as many probes as the pool had idle connections (8). So the
first connection found lost has the pool test its idle ones (a round trip each, nothing on a
closed socket) and drop the broken ones.
"""

from __future__ import annotations

import contextlib

from django.db import DatabaseError, connection


def connection_close_after_error() -> bool:
    """Close this thread's connection (a pooled one goes back, and is dropped if broken).

    True when it had been lost (not a query error): the pool's idle connections have been
    checked and the broken ones dropped, so a retry gets a working or a new connection.
    """
    raw = connection.connection
    lost = raw is not None and raw.broken
    with contextlib.suppress(DatabaseError):
        connection.close()
    pool = getattr(connection, "pool", None)
    if lost and pool is not None:
        pool.check()
    return lost
