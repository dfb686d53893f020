"""`manage.py embeddings_index_build`: HNSW indexes for closed months, none for the current one."""

from __future__ import annotations

import datetime as dt
import io
import re
import threading
from collections.abc import Iterator

import numpy as np
import pytest
from django.core.management import call_command
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from psycopg import sql

from embeddings.ann_indexes import AnnIndex, BuildProgress, ann_index_build
from embeddings.models import IncidentEmbedding
from embeddings.selectors import similar_incidents
from kubernaut_storage.database.partitioning import add_months, month_start, partition_create, partition_for

# CREATE INDEX CONCURRENTLY cannot run inside the transaction a plain django_db test is.
pytestmark = pytest.mark.django_db(transaction=True)

MINILM = ("all-MiniLM-L6-v2", 384)
TINY = ("tiny-test-model", 8)


def _embed(model: tuple[str, int], at: dt.datetime, seed: int) -> None:
    name, dimensions = model
    IncidentEmbedding.objects.create(
        audit_type="remediation",
        audit_id=seed,
        audit_recorded_at=at,
        namespace="ns",
        model=name,
        dimensions=dimensions,
        input_sha256="0" * 64,
        embedding=np.random.default_rng(seed).random(dimensions, dtype=np.float32),
        recorded_at=at,
    )


@pytest.fixture
def last_month() -> Iterator[str]:
    """Last month's embeddings partition with vectors of two models; dropped afterwards (DDL
    outlives a transactional test)."""
    month = add_months(month_start(timezone.now()), -1)
    partition = partition_for("incident_embeddings", month)
    partition_create(partition)
    for seed in range(3):
        _embed(MINILM, month + dt.timedelta(days=2), seed)
    _embed(TINY, month + dt.timedelta(days=3), 9)
    _embed(MINILM, timezone.now(), 11)  # the current month
    yield partition.name
    with connection.cursor() as cursor:
        cursor.execute(sql.SQL("DROP TABLE {}").format(sql.Identifier(partition.name)).as_string(None))


def _build(*args: str) -> str:
    out = io.StringIO()
    call_command("embeddings_index_build", *args, stdout=out)
    return out.getvalue()


def _hnsw_indexes() -> dict[str, str]:
    """Every HNSW index on a partition of incident_embeddings: name → definition."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexname, indexdef FROM pg_indexes"
            " WHERE tablename LIKE 'incident_embeddings_p%%' AND indexdef LIKE '%%USING hnsw%%'"
        )
        return dict(cursor.fetchall())


def test_closed_months_get_one_index_per_model_and_the_current_month_none(last_month):
    assert "would build" in _build("--dry-run")
    assert _hnsw_indexes() == {}

    out = _build()

    indexes = _hnsw_indexes()
    expected = {AnnIndex(partition=last_month, model=m, dimensions=d).name for m, d in (MINILM, TINY)}
    assert set(indexes) == expected
    minilm = indexes[AnnIndex(partition=last_month, model=MINILM[0], dimensions=MINILM[1]).name]
    assert f"ON public.{last_month} USING hnsw" in minilm
    assert "((embedding)::halfvec(384)) halfvec_cosine_ops" in minilm
    assert "m='16'" in minilm
    assert "ef_construction='64'" in minilm
    assert "(model)::text = 'all-MiniLM-L6-v2'::text" in minilm
    assert "dimensions = 384" in minilm
    assert "2 index(es) built" in out


def test_a_second_run_builds_nothing(last_month):
    _build()
    before = _hnsw_indexes()
    assert "0 index(es) built" in _build()
    assert "0 index(es) built" in _build("--recheck")
    assert _hnsw_indexes() == before


def test_an_invalid_index_from_an_interrupted_build_is_built_again(last_month):
    _build()
    name = AnnIndex(partition=last_month, model=MINILM[0], dimensions=MINILM[1]).name
    with connection.cursor() as cursor:
        # What a CREATE INDEX CONCURRENTLY that was cancelled leaves behind.
        cursor.execute("UPDATE pg_index SET indisvalid = false WHERE indexrelid = %s::regclass", [name])

    out = _build()

    assert f"built {name}" in out
    with connection.cursor() as cursor:
        cursor.execute("SELECT indisvalid FROM pg_index WHERE indexrelid = %s::regclass", [name])
        assert cursor.fetchone() == (True,)


def test_similar_incident_queries_read_the_closed_month_from_its_index(last_month):
    _build()
    name = AnnIndex(partition=last_month, model=MINILM[0], dimensions=MINILM[1]).name
    probe = IncidentEmbedding.objects.filter(model=MINILM[0]).first()
    assert probe is not None
    with CaptureQueriesContext(connection) as captured:
        similar_incidents(embedding=probe)
    [neighbours_sql] = [query["sql"] for query in captured.captured_queries]
    with transaction.atomic(), connection.cursor() as cursor:
        # The selector's own query, with sequential scans priced out as the planner would on
        # a month of real size.
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute(f"EXPLAIN {neighbours_sql}")
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert f"Index Scan using {name} on {last_month}" in plan


def test_bad_hnsw_parameters_are_refused():
    with pytest.raises(SystemExit):
        call_command("embeddings_index_build", "--m", "16", "--ef-construction", "16", stderr=io.StringIO())


def test_a_build_waiting_for_a_writer_reports_its_phase_until_it_goes_on(last_month):
    """An older transaction that holds a writer's lock on the partition makes CREATE INDEX
    CONCURRENTLY wait: the progress lines say so, instead of nothing for as long as it waits."""
    index = AnnIndex(partition=last_month, model=MINILM[0], dimensions=MINILM[1])
    samples: list[BuildProgress] = []
    writer_holds = threading.Event()
    release = threading.Event()

    def writer() -> None:
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(
                    sql.SQL("LOCK TABLE {} IN ROW EXCLUSIVE MODE").format(sql.Identifier(last_month)).as_string(None)
                )
                writer_holds.set()
                release.wait(30)
        finally:
            connection.close()

    def progress(sample: BuildProgress) -> None:
        samples.append(sample)
        if sample.phase.startswith("waiting for writers"):
            release.set()

    holder = threading.Thread(target=writer)
    holder.start()
    assert writer_holds.wait(10)
    try:
        built = ann_index_build(index, on_progress=progress, progress_seconds=0.05)
    finally:
        release.set()
        holder.join()

    waiting = [sample for sample in samples if sample.phase == "waiting for writers before build"]
    assert waiting  # the build went on only once a line had said what it waited for
    assert built.seconds >= waiting[0].seconds
    assert index.name in _hnsw_indexes()


def test_the_command_prints_the_memory_bound_and_when_the_graph_outgrows_it(last_month):
    month = add_months(month_start(timezone.now()), -1)
    for seed in range(100, 1100):
        _embed(MINILM, month + dt.timedelta(days=4), seed)

    out = _build("--maintenance-work-mem", "1MB", "--progress-seconds", "0.05")

    assert "memory bound: maintenance_work_mem 1MB" in out
    assert re.search(r"in [\d.]+ s; the graph outgrew maintenance_work_mem after [\d,]+ vectors", out), out
    # With room for the graph, no such line.
    with connection.cursor() as cursor:
        cursor.execute(
            sql.SQL("DROP INDEX {}")
            .format(sql.Identifier(AnnIndex(partition=last_month, model=MINILM[0], dimensions=MINILM[1]).name))
            .as_string(None)
        )
    assert "outgrew" not in _build("--maintenance-work-mem", "64MB")
