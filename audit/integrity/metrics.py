"""The sealing metrics, read from the database at scrape time by the metrics endpoint: the seal
lag, the last verification, and the seal log's time anchors and witnesses.

`audit_seal` and `audit_verify` run as Jobs that Prometheus never scrapes, so the pod's metrics
endpoint reads their results where they leave them: the seals table and the verification runs.
It opens its own short connection (not Django's pool: the process serving metrics forks the
workers, which must not inherit a pool), and a database that cannot answer costs only these
series, never the scrape.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterator
from typing import Any

import psycopg
from django.conf import settings
from django.db import connection
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from audit.integrity.stored_seals import LAST_SEAL_SQL
from kubernaut_integrity.canonical import SEALED_TABLES, WINDOW_COLUMN

logger = logging.getLogger(__name__)

# Only the form's constant table and column names go into the text.
_EARLIEST = " UNION ALL ".join(f"(SELECT min({WINDOW_COLUMN}) FROM {table})" for table in SEALED_TABLES)  # noqa: S608
STATE_SQL = (
    "SELECT statement_timestamp(),"  # noqa: S608
    f" (SELECT window_end FROM ({LAST_SEAL_SQL}) AS last_seal),"
    f" (SELECT min(m) FROM ({_EARLIEST}) AS mins(m)),"
    " v.finished_at, v.passed, v.findings"
    " FROM (SELECT 1) AS one LEFT JOIN LATERAL"
    " (SELECT finished_at, passed, findings FROM audit_verifications ORDER BY finished_at DESC LIMIT 1) AS v ON true"
)
# The oldest checkpoint no anchor covers yet (an anchor covers every checkpoint up to its size):
# the first one after the largest anchored size, by the primary key.
_FIRST_AFTER = "(SELECT created_at FROM audit_checkpoints WHERE size > {} ORDER BY size LIMIT 1)"
ANCHOR_STATE_SQL = "SELECT " + _FIRST_AFTER.format(  # noqa: S608 - constant text only
    "coalesce((SELECT max(checkpoint_size) FROM audit_anchors), 0)"
)
WITNESS_STATE_SQL = (
    "SELECT w.witness, w.outcome = 'inconsistent', "  # noqa: S608 - constant text only
    + _FIRST_AFTER.format("w.cosigned_size")
    + " FROM audit_witness_state AS w ORDER BY w.witness"
)


def age(*, now: dt.datetime, since: dt.datetime | None) -> float:
    """Seconds since `since`; 0 when nothing is owed."""
    return max(0.0, (now - since).total_seconds()) if since is not None else 0.0


def seal_lag(
    *, now: dt.datetime, last_sealed_end: dt.datetime | None, earliest: dt.datetime | None, window_seconds: int
) -> float:
    """Age of the oldest closed window not yet sealed; 0 when every closed window is sealed."""
    if last_sealed_end is None:
        if earliest is None:
            return 0.0
        seconds = int(earliest.timestamp()) // window_seconds * window_seconds
        last_sealed_end = dt.datetime.fromtimestamp(seconds, tz=dt.UTC)
    return max(0.0, (now - last_sealed_end).total_seconds() - window_seconds)


class SealCollector(Collector):
    def collect(self) -> Iterator[GaugeMetricFamily]:
        try:
            state, anchor_since, witnesses = self._state()
        except psycopg.Error as exc:
            logger.warning("seal metrics: database not readable: %s", exc)
            return
        now, last_end, earliest, verified_at, passed, findings = state
        lag = GaugeMetricFamily(
            "kubernaut_audit_seal_lag_seconds",
            "Age of the oldest closed window of the audit history not sealed yet (0: all sealed).",
        )
        lag.add_metric(
            [],
            seal_lag(
                now=now, last_sealed_end=last_end, earliest=earliest, window_seconds=settings.AUDIT_SEAL_WINDOW_SECONDS
            ),
        )
        yield lag
        yield from self._log_metrics(now, anchor_since, witnesses)
        if verified_at is None:
            return
        outcome = GaugeMetricFamily(
            "kubernaut_audit_verify_last_clean",
            "1 if the last audit_verify run found nothing, 0 if it found something.",
        )
        outcome.add_metric([], 1.0 if passed else 0.0)
        yield outcome
        count = GaugeMetricFamily("kubernaut_audit_verify_last_findings", "Findings of the last audit_verify run.")
        count.add_metric([], float(findings))
        yield count
        when = GaugeMetricFamily(
            "kubernaut_audit_verify_last_run_timestamp_seconds", "When the last audit_verify run finished (Unix time)."
        )
        when.add_metric([], verified_at.timestamp())
        yield when

    def _log_metrics(
        self, now: dt.datetime, anchor_since: dt.datetime | None, witnesses: list[tuple[Any, ...]]
    ) -> Iterator[GaugeMetricFamily]:
        if settings.AUDIT_TSA_URL:
            anchor = GaugeMetricFamily(
                "kubernaut_audit_anchor_lag_seconds",
                "Age of the oldest checkpoint of the seal log no RFC 3161 time anchor covers yet (0: all covered).",
            )
            anchor.add_metric([], age(now=now, since=anchor_since))
            yield anchor
        if not witnesses:
            return
        witness_lag = GaugeMetricFamily(
            "kubernaut_audit_witness_lag_seconds",
            "Age of the oldest checkpoint of the seal log the witness has not cosigned (0: it cosigned the latest).",
            labels=["witness"],
        )
        inconsistent = GaugeMetricFamily(
            "kubernaut_audit_witness_inconsistent",
            "1 if the witness last answered that it holds a history this log does not extend.",
            labels=["witness"],
        )
        for witness, is_inconsistent, since in witnesses:
            witness_lag.add_metric([witness], age(now=now, since=since))
            inconsistent.add_metric([witness], 1.0 if is_inconsistent else 0.0)
        yield witness_lag
        yield inconsistent

    def _state(self) -> tuple[tuple[Any, ...], dt.datetime | None, list[tuple[Any, ...]]]:
        params = connection.get_connection_params()
        for key in ("cursor_factory", "context", "prepare_threshold"):
            params.pop(key, None)
        with psycopg.connect(**params, autocommit=True) as conn, conn.cursor() as cursor:
            cursor.execute(STATE_SQL)
            row = cursor.fetchone()
            cursor.execute(ANCHOR_STATE_SQL)
            anchor = cursor.fetchone()
            cursor.execute(WITNESS_STATE_SQL)
            witnesses = [tuple(witness) for witness in cursor.fetchall()]
        assert row is not None
        assert anchor is not None
        return tuple(row), anchor[0], witnesses
