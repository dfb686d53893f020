"""Load a million audit rows into a scratch database and time the admin pages on it.

Results are in docs/ADMIN.md. Run from the repo root, against a scratch database of the
embedded PostgreSQL (never the test database, never production):

    export DJANGO_SETTINGS_MODULE=kubernaut_storage.settings.local
    export EMBEDDED_POSTGRES_DATABASE=kubernaut_admin_bench
    .venv/bin/python bench/scripts/admin.py load --chains 200000 --embeddings 200000
    .venv/bin/python bench/scripts/admin.py time
    .venv/bin/python bench/scripts/admin.py hnsw      # the closed months' HNSW indexes, EXPLAIN, time again
    .venv/bin/python bench/scripts/admin.py drop-hnsw
    .venv/bin/python bench/scripts/admin.py smoke     # all of the above on a tiny load, in seconds

`load` writes everything server-side with INSERT ... SELECT over generate_series (no row
crosses the wire): each chain is a remediation, its AI analysis, its workflow and two
executions sharing one correlation id, spread evenly over the last six months, so
--chains 200000 makes 1,000,000 audit rows. --embeddings gives that many of the newest
remediations a 384-d vector (clustered pseudo-random, enough for timing, not for meaning).

`smoke` runs every other command once on SMOKE_CHAINS chains (enough for every page, the
20th list page and a remediation a thousand back from the newest), so that a test can keep
this script working (tests/bench/scripts/test_admin.py).

`time` requests each page through Django's test client as a logged-in auditor (the whole
server-side cost: middleware, queries, templates; no network), after one warm-up request,
and prints min / median / max of --repeat runs and the page's query count.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import statistics
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "kubernaut_storage.settings.local")

import django

django.setup()

from django.contrib.auth.models import User
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from psycopg import sql

from audit.admin.auditors import auditors_group_ensure
from kubernaut_storage.database.partitioning import (
    add_months,
    month_start,
    partition_create,
    partition_for,
    partitioned_tables,
)

MONTHS = 6
#: The smoke run's chains: the 20th page of 50 and the thousandth-newest embedding exist.
SMOKE_CHAINS = 1100
MODEL = "all-MiniLM-L6-v2"

# One row per chain, computed on the server; every INSERT below reads it.
CHAINS_VIEW = """
CREATE TEMP VIEW bench_chains AS
SELECT i,
       {start}::timestamptz + (i - 1) * ({span}::interval / {chains}) AS t,
       'ns-' || mod(i, 50) AS ns,
       CASE WHEN mod(i, 20) = 0 THEN 'Failed' WHEN mod(i, 97) = 0 THEN 'Pending'
            WHEN mod(i, 89) = 0 THEN 'Processing' ELSE 'Completed' END AS phase,
       CASE WHEN mod(i, 3) = 0 THEN 'kubernetes-event' ELSE 'prometheus' END AS signal_type,
       (ARRAY['deployment','statefulset','daemonset','replicaset','pod','node','job','cronjob',
              'horizontalpodautoscaler','persistentvolumeclaim','service','configmap'])[1 + mod(i, 12)] AS target_type,
       (ARRAY['production','staging','development'])[1 + mod(i, 3)] AS environment,
       CASE WHEN mod(i, 100) = 0 THEN 'P0' ELSE (ARRAY['P1','P2','P3'])[1 + mod(i, 3)] END AS priority,
       'app-' || mod(i, 200) AS app,
       'bench-corr-' || i AS correlation_id
FROM generate_series(1, {chains}) AS i
"""

COMMON_COLUMNS = (
    "recorded_at, name, namespace, phase, message, created_at, started_at, completed_at, correlation_id,"
    " labels, actor, request_id, content_sha256, payload"
)


def _common(offset_s: int, name: str, extra_payload: str) -> str:
    """The common column values of one record of a chain, `offset_s` after the chain starts."""
    at = f"t + interval '{offset_s} seconds'"
    return f"""
        {at}, {name}, ns, phase, 'Step of remediation ' || i || ' ' || phase || '.', {at} - interval '2 minutes',
        {at} - interval '115 seconds', {at} - interval '55 seconds', correlation_id,
        jsonb_build_object('app.kubernetes.io/name', app, 'team', 'team-' || mod(i, 9)),
        'system:serviceaccount:kubernaut:controller', 'req-' || i || '-{offset_s}',
        encode(sha256(convert_to(correlation_id || '{offset_s}', 'UTF8')), 'hex'),
        jsonb_build_object('name', {name}, 'namespace', ns, 'phase', phase, 'correlationId', correlation_id,
                           'labels', jsonb_build_object('app.kubernetes.io/name', app), {extra_payload})"""


INSERTS = {
    "audit_remediation": f"""
INSERT INTO audit_remediation ({COMMON_COLUMNS}, signal_type, signal_name, signal_namespace, target_type,
    target_name, target_namespace, environment, priority, fingerprint)
SELECT {
        _common(
            0,
            "'rr-' || i",
            "'signalType', signal_type, 'signalName', 'KubePodOOMKilled',"
            " 'targetType', target_type, 'targetName', app, 'environment', environment, 'priority', priority,"
            " 'reason', 'Container exceeded its memory limit'",
        )
    },
       signal_type, 'KubePodOOMKilled', ns, target_type, app, ns, environment, priority,
       encode(sha256(convert_to('fp' || mod(i, 5000), 'UTF8')), 'hex')
FROM bench_chains""",
    "audit_aianalysis": f"""
INSERT INTO audit_aianalysis ({COMMON_COLUMNS}, remediation_request_ref, signal_type, llm_provider, llm_model,
    root_cause, confidence, recommended_action, requires_approval)
SELECT {
        _common(
            20,
            "'ai-' || i",
            "'remediationRequestRef', 'rr-' || i, 'llmProvider', 'openai', 'llmModel', 'gpt-4o',"
            " 'rootCause', 'Memory leak in the cache', 'confidence', 0.8, 'tokensUsed', 1800",
        )
    },
       'rr-' || i, signal_type, 'openai', 'gpt-4o',
       (ARRAY['Memory leak in the payment cache', 'CPU throttling under load', 'Bad config rollout',
              'Node disk pressure', 'Crash loop after image update'])[1 + mod(i, 5)],
       0.5 + mod(i, 50) / 100.0, 'increase_memory_limit', mod(i, 10) = 0
FROM bench_chains""",
    "audit_workflow": f"""
INSERT INTO audit_workflow ({COMMON_COLUMNS}, remediation_request_ref, ai_analysis_ref, workflow_name, step_count,
    completed_count, failed_count)
SELECT {
        _common(
            40,
            "'wf-' || i",
            "'remediationRequestRef', 'rr-' || i, 'aiAnalysisRef', 'ai-' || i,"
            " 'workflowName', 'oom-recovery', 'stepCount', 3,"
            " 'stepStatuses', jsonb_build_array(jsonb_build_object('name', 'increase-memory', 'phase', phase))",
        )
    },
       'rr-' || i, 'ai-' || i, 'oom-recovery', 3, CASE WHEN phase = 'Failed' THEN 1 ELSE 3 END,
       CASE WHEN phase = 'Failed' THEN 1 ELSE 0 END
FROM bench_chains""",
    "audit_execution": f"""
INSERT INTO audit_execution ({COMMON_COLUMNS}, workflow_execution_ref, step_name, action_type, target_type,
    target_name, target_namespace, action_result, is_rolled_back)
SELECT {
        _common(
            60,
            "'ke-' || i || '-' || step",
            "'workflowExecutionRef', 'wf-' || i,"
            " 'actionType', 'increase_memory_limit', 'actionData', jsonb_build_object('memory', '1Gi')",
        )
    },
       'wf-' || i, 'step-' || step, (ARRAY['increase_memory_limit', 'restart_pod', 'scale_deployment'])[step],
       target_type, app, ns, 'patched', step = 2 AND mod(i, 50) = 0
FROM bench_chains, generate_series(1, 2) AS step""",
}

EMBEDDINGS_INSERT = """
INSERT INTO incident_embeddings (audit_type, audit_id, audit_recorded_at, remediation_request_id, namespace,
    target_type, target_name, signal_type, root_cause, model, dimensions, input_sha256, embedding, recorded_at)
SELECT 'remediation', r.id, r.recorded_at, r.name, r.namespace, r.target_type, r.target_name, r.signal_type, '',
       %(model)s, 384, md5(r.name) || md5(r.name),
       -- 20 clusters with noise; the correlation with r.id re-evaluates the subquery per row
       (SELECT array_agg(sin(mod(r.id, 20) * 7 + d) + 0.3 * (random() - 0.5))::vector(384)
          FROM generate_series(1, 384) AS d WHERE r.id IS NOT NULL),
       r.recorded_at
FROM (SELECT * FROM audit_remediation ORDER BY recorded_at DESC LIMIT %(count)s) AS r
"""


def _execute(statement: str | sql.Composable, params: Any = None) -> float:
    started = time.perf_counter()
    with connection.cursor() as cursor:
        text = statement if isinstance(statement, str) else statement.as_string(cursor.cursor.connection)
        cursor.execute(text, params)
    return time.perf_counter() - started


def load(*, chains: int, embeddings: int) -> None:
    call_command("migrate", verbosity=0)
    now = timezone.now()
    start = add_months(month_start(now), -(MONTHS - 1))
    for offset in range(MONTHS + 2):
        for table in partitioned_tables():
            partition_create(partition_for(table, add_months(start, offset)))
    span = (now - dt.timedelta(hours=1)) - start
    view = sql.SQL(CHAINS_VIEW).format(start=sql.Literal(start), span=sql.Literal(span), chains=sql.Literal(chains))
    _execute(view)
    total = time.perf_counter()
    # The rows are months old on purpose, which the write-lag trigger refuses (and the clock
    # bound, to any role but the owner): this session, the superuser's, turns every trigger
    # off for the load, and only the load.
    _execute("SET session_replication_role = replica")
    try:
        for table, statement in INSERTS.items():
            print(f"{table}: {_execute(statement):.1f} s")
        if embeddings:
            print(f"incident_embeddings: {_execute(EMBEDDINGS_INSERT, {'model': MODEL, 'count': embeddings}):.1f} s")
    finally:
        _execute("SET session_replication_role = origin")
    with connection.cursor() as cursor:
        cursor.execute("DROP VIEW bench_chains")
    connection.close()
    # VACUUM cannot run in a transaction; autocommit is Django's default outside atomic().
    print(f"VACUUM ANALYZE: {_execute('VACUUM ANALYZE'):.1f} s")
    print(f"loaded in {time.perf_counter() - total:.0f} s")
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT parent.relname, sum(child.reltuples)::bigint,"
            " pg_size_pretty(sum(pg_total_relation_size(child.oid)))"
            " FROM pg_inherits JOIN pg_class parent ON parent.oid = inhparent"
            " JOIN pg_class child ON child.oid = inhrelid"
            " WHERE parent.relkind = 'p' GROUP BY parent.relname ORDER BY 1"
        )
        for name, rows, size in cursor.fetchall():
            print(f"  {name}: ~{rows} rows, {size}")


def _auditor_client() -> Client:
    user, created = User.objects.get_or_create(username="bench-auditor", defaults={"is_staff": True})
    if created:
        user.groups.add(auditors_group_ensure())
    client = Client(HTTP_HOST="localhost")
    client.force_login(user)
    return client


def _pages() -> dict[str, str]:
    with connection.cursor() as cursor:
        # A remediation a thousand records back from the newest that has an embedding: not in
        # the hottest pages, not in the coldest.
        cursor.execute(
            "SELECT r.id, r.correlation_id, r.name FROM audit_remediation r JOIN ("
            "  SELECT audit_id, audit_recorded_at FROM incident_embeddings WHERE audit_type = 'remediation'"
            "  ORDER BY audit_recorded_at DESC LIMIT 1 OFFSET 1000"
            ") e ON r.id = e.audit_id AND r.recorded_at = e.audit_recorded_at"
        )
        rid, corr, name = cursor.fetchone()
        cursor.execute("SELECT id FROM audit_workflow WHERE correlation_id = %s", [corr])
        wid = cursor.fetchone()[0]
    remediations = reverse("admin:audit_remediationaudit_changelist")
    week_ago = (timezone.now() - dt.timedelta(days=7)).replace(microsecond=0).isoformat().replace("+", "%2B")
    pages = {
        "list, newest page": remediations,
        "list, page 20": f"{remediations}?p=20",
        "filter phase=Failed": f"{remediations}?phase__exact=Failed",
        "filter namespace=ns-7": f"{remediations}?namespace=ns-7",
        "filter priority=P0 (1%)": f"{remediations}?priority=P0",
        "filter past 7 days": f"{remediations}?recorded_at__gte={week_ago}",
        "filter rolled back (1%)": reverse("admin:audit_executionaudit_changelist") + "?is_rolled_back__exact=1",
        "search correlation id": f"{remediations}?q={corr}",
        "search name prefix": f"{remediations}?q={name[:-1]}",
        "search namespace/name": f"{remediations}?q=ns-7/{name}",
        "timeline": reverse("audit-timeline", args=[corr]),
        "detail, workflow (refs)": reverse("admin:audit_workflowaudit_change", args=[wid]),
        "detail, remediation (similar)": reverse("admin:audit_remediationaudit_change", args=[rid]),
        "embeddings list": reverse("admin:embeddings_incidentembedding_changelist"),
    }
    return pages


def time_pages(*, repeat: int) -> None:
    client = _auditor_client()
    print("| page | min ms | median ms | max ms | queries |\n|---|---|---|---|---|")
    for label, url in _pages().items():
        response = client.get(url)  # warm-up
        assert response.status_code == 200, (url, response.status_code)
        timings = []
        for _ in range(repeat):
            started = time.perf_counter()
            client.get(url)
            timings.append((time.perf_counter() - started) * 1000)
        with CaptureQueriesContext(connection) as captured:
            client.get(url)
        print(
            f"| {label} | {min(timings):.0f} | {statistics.median(timings):.0f} | {max(timings):.0f}"
            f" | {len(captured.captured_queries)} |"
        )


def explain_similar(*, seqscan: bool = True) -> None:
    """EXPLAIN ANALYZE the similar-incidents query of the 'detail, remediation' page.

    seqscan=False prices sequential and bitmap scans out, to show on a small table that the
    HNSW indexes *can* answer the query (the planner rightly prefers a scan of a few thousand
    vectors).
    """
    from embeddings.models import IncidentEmbedding
    from embeddings.selectors import similar_incidents

    embedding = IncidentEmbedding.objects.filter(audit_type="remediation").order_by("-audit_recorded_at")[1000]
    with CaptureQueriesContext(connection) as captured:
        similar_incidents(embedding=embedding)
    knn = captured.captured_queries[-1]["sql"]
    with connection.cursor() as cursor:
        cursor.execute(f"SET enable_seqscan = {'on' if seqscan else 'off'}")
        cursor.execute(f"SET enable_bitmapscan = {'on' if seqscan else 'off'}")
        cursor.execute(f"EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY ON) {knn}")
        for (line,) in cursor.fetchall():
            print("   ", re.sub(r"'\[[^']{40,}\]'", "'[...]'", line))


def _plan_nodes(node: dict[str, Any]) -> list[dict[str, Any]]:
    return [node, *(child for sub in node.get("Plans", []) for child in _plan_nodes(sub))]


def _generic(index_name: str) -> str:
    return re.sub(r"_p[0-9]{4}_[0-9]{2}", "_pYYYY_MM", index_name)


def plans() -> None:
    """For every page, each query on an audit or embedding table: its time and how it reads."""
    client = _auditor_client()
    for label, url in _pages().items():
        client.get(url)
        with CaptureQueriesContext(connection) as captured:
            client.get(url)
        print(f"{label}:")
        for query in captured.captured_queries:
            text = query["sql"]
            if not re.search(r'"(audit_(remediation|aianalysis|workflow|execution)|incident_embeddings)"', text):
                continue
            if text.startswith("EXPLAIN"):
                print("    EXPLAIN (row estimate of a filter matching > 1000 rows)")
                continue
            with connection.cursor() as cursor:
                cursor.execute(f"EXPLAIN (ANALYZE, FORMAT JSON) {text}")
                plan = cursor.fetchone()[0]
            plan = json.loads(plan) if isinstance(plan, str) else plan
            nodes = _plan_nodes(plan[0]["Plan"])
            # Seq Scans of empty (future) partitions and of the small catalogs are harmless:
            # only those that read rows are named.
            scans = sorted(
                {
                    f"{node['Node Type']} {_generic(node.get('Index Name', ''))}".strip()
                    for node in nodes
                    if ("Scan" in node["Node Type"] and node["Node Type"] != "Seq Scan")
                    or node["Node Type"] in ("Sort", "Incremental Sort")
                }
                | {
                    f"Seq Scan {node['Relation Name']} ({node['Actual Rows']:.0f} rows)"
                    for node in nodes
                    if node["Node Type"] == "Seq Scan" and node["Actual Rows"] > 0
                }
            )
            head = re.sub(r"\s+", " ", text)[:70]
            print(f"    {plan[0]['Execution Time']:7.2f} ms  {head}...  [{'; '.join(scans)}]")


def hnsw_create() -> None:
    """The HNSW indexes of the closed months, built by `embeddings_index_build` exactly as in
    production, so that the pages are timed with the indexes the similar-incidents query
    really uses (embeddings/ann_indexes.py), not with one of the benchmark's own making."""
    started = time.perf_counter()
    call_command("embeddings_index_build")
    print(f"HNSW indexes built in {time.perf_counter() - started:.0f} s")


def hnsw_drop() -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT index.relname FROM pg_inherits JOIN pg_index ON pg_index.indrelid = pg_inherits.inhrelid"
            " JOIN pg_class AS index ON index.oid = pg_index.indexrelid"
            " WHERE pg_inherits.inhparent = 'incident_embeddings'::regclass AND index.relname LIKE %s",
            ["%\\_hnsw"],
        )
        names = [name for (name,) in cursor.fetchall()]
    for name in names:
        _execute(sql.SQL("DROP INDEX {}").format(sql.Identifier(name)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    loading = commands.add_parser("load")
    loading.add_argument("--chains", type=int, default=200_000)
    loading.add_argument("--embeddings", type=int, default=200_000)
    timing = commands.add_parser("time")
    timing.add_argument("--repeat", type=int, default=7)
    hnsw = commands.add_parser("hnsw")
    hnsw.add_argument("--repeat", type=int, default=7)
    commands.add_parser("drop-hnsw")
    commands.add_parser("plans")
    commands.add_parser("smoke")
    explain = commands.add_parser("explain")
    explain.add_argument("--no-seqscan", action="store_true", help="price sequential and bitmap scans out")
    args = parser.parse_args()
    if not connection.settings_dict["NAME"].endswith("_bench"):
        parser.error("refusing to run outside a scratch database: set EMBEDDED_POSTGRES_DATABASE=..._bench")
    if args.command == "load":
        load(chains=args.chains, embeddings=args.embeddings)
    elif args.command == "time":
        time_pages(repeat=args.repeat)
    elif args.command == "explain":
        explain_similar(seqscan=not args.no_seqscan)
    elif args.command == "hnsw":
        hnsw_create()
        explain_similar()
        time_pages(repeat=args.repeat)
    elif args.command == "plans":
        plans()
    elif args.command == "drop-hnsw":
        hnsw_drop()
    elif args.command == "smoke":
        load(chains=SMOKE_CHAINS, embeddings=SMOKE_CHAINS)
        time_pages(repeat=1)
        plans()
        hnsw_create()
        explain_similar()
        explain_similar(seqscan=False)
        time_pages(repeat=1)
        hnsw_drop()


if __name__ == "__main__":
    main()
