"""How a worker's connection pool keeps trying while the database is down.

Only psycopg_pool (no Django): the settings hand the callback to the pool.
"""

from __future__ import annotations

from typing import Any

from psycopg_pool import ConnectionPool


def reconnect_while_requests_wait(pool: ConnectionPool[Any]) -> None:
    """The pool's `reconnect_failed` callback: an attempt to connect that gave up (after the
    pool's reconnect_timeout) starts the next one at once while requests wait for a connection.

    Otherwise only a request arriving later starts one, and a request already waiting when the
    database returns could wait out its timeout (503) with nobody trying. `check()` on a pool
    whose requests wait has no idle connection to test: it only grows the pool, one attempt at
    a time like every growth. With nobody waiting the pool stays idle until a request comes.
    """
    if pool.get_stats().get("requests_waiting"):
        pool.check()
