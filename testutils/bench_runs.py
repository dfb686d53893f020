"""Running the documented benchmark commands in their smoke forms, as the tests do.

Each runs as its own process, as documented (`python -m bench …`, `.venv/bin/python
bench/scripts/…`), with none of the test run's Django settings, database or Redis leaking in.
The scripts that work on a scratch database of the embedded PostgreSQL get one of their own
on the test run's server (`scratch_database`), created from a migrated template so that each
does not pay for the migrations again, and dropped afterwards.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
from django.conf import settings
from psycopg import sql

ROOT = Path(__file__).resolve().parent.parent
#: The test run's own: a benchmark process configures everything itself.
LEAKING = ("DJANGO_SETTINGS_MODULE", "DATABASE_URL", "REDIS_URL", "EMBEDDED_POSTGRES_DIR", "EMBEDDED_POSTGRES_DATABASE")
LOCAL_SETTINGS = "kubernaut_storage.settings.local"
_TEMPLATE = "kubernaut_smoke_template_bench"


def bench_env(**extra: str) -> dict[str, str]:
    """The environment of a benchmark command started by hand: this one without the test run's
    configuration, bootstrapped (`python -m bench` would otherwise run scripts/setup first)."""
    env = {key: value for key, value in os.environ.items() if key not in LEAKING}
    return {**env, "KUBERNAUT_BENCH_BOOTSTRAPPED": "1", **extra}


def bench_run(arguments: list[str], *, env: dict[str, str] | None = None, timeout: float = 300) -> str:
    """Run `python <arguments>` from the repository root; its stdout. Fails the test with the
    command's output when it exits non-zero."""
    done = subprocess.run(
        [sys.executable, *arguments],
        cwd=ROOT,
        env=env if env is not None else bench_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert done.returncode == 0, f"{arguments} exited {done.returncode}:\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
    return done.stdout


def _server() -> tuple[Path, str]:
    """The test run's embedded server: its data directory and socket directory."""
    from kubernaut_storage.database.embedded_postgres import embedded_server_start

    embedded = settings.DATABASES["default"].get("EMBEDDED_POSTGRES")
    assert embedded, "the benchmark smoke tests use the embedded PostgreSQL (DATABASE_URL unset)"
    data_dir = Path(embedded["DATA_DIR"])
    return data_dir, embedded_server_start(data_dir=data_dir, database="postgres")


def _template_migrated(socket_dir: str, data_dir: Path) -> None:
    """Create (once) and migrate the template the scratch databases are copied from."""
    with psycopg.connect(host=socket_dir, user="postgres", dbname="postgres", autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [_TEMPLATE]).fetchone() is None:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(_TEMPLATE)))
    # Cheap when nothing changed; it brings a template from an earlier run up to date.
    bench_run(
        ["manage.py", "migrate", "--noinput", "-v", "0"],
        env=bench_env(
            DJANGO_SETTINGS_MODULE=LOCAL_SETTINGS,
            EMBEDDED_POSTGRES_DIR=str(data_dir),
            EMBEDDED_POSTGRES_DATABASE=_TEMPLATE,
        ),
    )


@contextmanager
def scratch_database(prefix: str) -> Iterator[dict[str, str]]:
    """A new migrated `<prefix>_<random>_bench` database; yields the environment that points
    a command at it with the local settings (as the scripts' documentation says to run them)."""
    data_dir, socket_dir = _server()
    _template_migrated(socket_dir, data_dir)
    name = f"{prefix}_{uuid.uuid4().hex[:8]}_bench"
    with psycopg.connect(host=socket_dir, user="postgres", dbname="postgres", autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(sql.Identifier(name), sql.Identifier(_TEMPLATE)))
    try:
        yield bench_env(
            DJANGO_SETTINGS_MODULE=LOCAL_SETTINGS, EMBEDDED_POSTGRES_DIR=str(data_dir), EMBEDDED_POSTGRES_DATABASE=name
        )
    finally:
        with psycopg.connect(host=socket_dir, user="postgres", dbname="postgres", autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
