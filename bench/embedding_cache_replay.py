"""Replay realistic audit writes; report the embedding cache hit rate and write latency, hit vs miss.

    .venv/bin/python bench/embedding_cache_replay.py --writes 500 --incidents 40 --start-redis

Runs the whole write path in this process (Django test client → middleware → serializer →
audit_record_create → embedding → one PostgreSQL transaction) against the embedded PostgreSQL
(database `kubernaut_bench`, migrated here) with the local model as the only provider, and
the cache in Redis (`--start-redis` runs a private redis-server; `--redis-url` uses yours;
neither: the in-process cache). The hit rate is read from kubernaut_embedding_cache_total, as
Prometheus would.

The workload: `--incidents` distinct incidents (a signal, what the AI found, the workflow run
and the action taken), each reported as four audit records. Writes pick an incident with
Zipf-like weights (a few incidents are common, most rare) and a kind, and get fresh object
names, namespaces, pod names, correlation ids, timestamps, IPs and request ids, named in
their free text too, as controllers write them. Phase two measures latency head to head:
`--latency-writes` writes with the cache off (every write a miss), then as many with the
cache warm (every write a hit).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SIGNALS = [
    ("prometheus", "KubePodOOMKilled", "deployment", "Container exceeded its memory limit"),
    ("prometheus", "KubePodCrashLooping", "deployment", "Back-off restarting failed container"),
    ("kubernetes-event", "BackOff", "statefulset", "Back-off pulling image"),
    ("prometheus", "KubeNodeNotReady", "node", "Kubelet stopped posting node status"),
    ("prometheus", "CPUThrottlingHigh", "deployment", "Container CPU throttled above 50%"),
    ("prometheus", "KubePersistentVolumeFillingUp", "persistentvolumeclaim", "Volume is 95% full"),
    ("kubernetes-event", "FailedScheduling", "pod", "0/12 nodes are available: insufficient memory"),
    ("prometheus", "KubeHpaMaxedOut", "horizontalpodautoscaler", "HPA has been running at max replicas"),
    ("prometheus", "KubeJobFailed", "job", "Job failed to complete"),
    ("prometheus", "TargetDown", "service", "Prometheus target is down"),
]
CAUSES = [
    ("A memory leak in {app}'s cache grows until the OOM killer fires on {pod}.", "increase_memory_limit"),
    ("{app} reads a missing config key at start-up and exits (pod {pod}).", "rollback_deployment"),
    ("The image tag of {app} does not exist in the registry.", "rollback_deployment"),
    ("Disk pressure on the node evicted {pod}.", "cordon_and_drain_node"),
    ("CPU limit of {app} is below its steady-state use.", "increase_cpu_limit"),
]
WORKFLOWS = [
    ("oom-recovery", ["increase-memory", "rollout-restart", "verify"]),
    ("rollback", ["rollback-deployment", "verify"]),
    ("node-remediation", ["cordon", "drain", "reboot", "uncordon"]),
    ("scale-out", ["scale-deployment", "verify"]),
]
_PRODUCTS = ("payments", "checkout", "search", "catalog", "auth", "billing")
APPS = [f"{product}-{part}" for product in _PRODUCTS for part in ("api", "worker", "web", "db", "cache")]
NAMESPACES = ["payments", "shop-prod", "shop-staging", "search", "identity", "billing"]
NAMESPACES += ["data", "edge", "ml", "ops", "infra", "tools"]
SAFE = "bcdfghjklmnpqrstvwxz2456789"


def incidents(count: int, rng: random.Random) -> list[dict[str, Any]]:
    """Distinct incidents: combinations of signal, cause, workflow and outcome."""
    seen, result = set(), []
    while len(result) < count:
        signal = rng.randrange(len(SIGNALS))
        cause = rng.randrange(len(CAUSES))
        workflow = rng.randrange(len(WORKFLOWS))
        phase = rng.choice(["Completed", "Completed", "Completed", "Failed"])
        key = (signal, cause, workflow, phase)
        if key in seen:
            continue
        seen.add(key)
        result.append(
            {"signal": SIGNALS[signal], "cause": CAUSES[cause], "workflow": WORKFLOWS[workflow], "phase": phase}
        )
    return result


def pod_name(app: str, rng: random.Random) -> str:
    return f"{app}-{''.join(rng.choices(SAFE, k=9))}-{''.join(rng.choices(SAFE, k=5))}"


def body_for(kind: Any, incident: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    from audit.models import AuditKind
    from testutils.factories import VALID_BODIES, rfc3339

    app, namespace = rng.choice(APPS), rng.choice(NAMESPACES)
    pod = pod_name(app, rng)
    created = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(seconds=rng.randrange(60, 3600))
    signal_type, signal_name, target_type, reason = incident["signal"]
    cause, action = incident["cause"]
    workflow, steps = incident["workflow"]
    phase = incident["phase"]
    ip = f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(256)}"
    common = {
        "name": f"{kind.value[:2]}-{app}-{uuid.uuid4().hex[:5]}",
        "namespace": namespace,
        "phase": phase,
        "createdAt": rfc3339(created),
        "startedAt": rfc3339(created + dt.timedelta(seconds=2)),
        "completedAt": rfc3339(created + dt.timedelta(seconds=rng.randrange(5, 300))),
        "correlationId": f"corr-{uuid.uuid4().hex}",
        "labels": {"app.kubernetes.io/name": app, "team": rng.choice(["red", "blue", "green"])},
        "message": f"{workflow} for {pod} in {namespace} ({ip}) {phase.lower()} at {rfc3339(created)}.",
    }
    if kind == AuditKind.REMEDIATION:
        extra = {
            "signalType": signal_type, "signalName": signal_name, "signalNamespace": namespace,
            "targetType": target_type, "targetName": app, "targetNamespace": namespace,
            "environment": "production", "priority": "P1",
            "fingerprint": "".join(rng.choices("0123456789abcdef", k=64)), "reason": reason,
        }  # fmt: skip
    elif kind == AuditKind.AI_ANALYSIS:
        extra = {
            "remediationRequestRef": f"rr-{app}-{uuid.uuid4().hex[:5]}", "signalType": signal_type,
            "rootCause": cause.format(app=app, pod=pod), "recommendedAction": action,
            "confidence": round(rng.uniform(0.5, 0.99), 2), "tokensUsed": rng.randrange(500, 5000),
            "investigationId": f"inv-{uuid.uuid4().hex[:8]}", "requiresApproval": phase == "Failed",
        }  # fmt: skip
    elif kind == AuditKind.WORKFLOW:
        extra = {
            "remediationRequestRef": f"rr-{app}-{uuid.uuid4().hex[:5]}", "workflowName": workflow,
            "isAutoApproved": True, "stepCount": len(steps), "currentStep": len(steps),
            "completedCount": len(steps), "failedCount": 0, "skippedCount": 0,
            "stepStatuses": [{"name": step, "phase": "Completed"} for step in steps],
        }  # fmt: skip
    else:
        extra = {
            "workflowExecutionRef": f"wf-{app}-{uuid.uuid4().hex[:5]}", "stepName": steps[0],
            "actionType": action, "targetType": target_type, "targetName": app, "targetNamespace": namespace,
            "actionData": {"container": app}, "resourceVersion": str(rng.randrange(10**6)),
            "actionResult": f"patched {target_type} {app} in {namespace}", "isRolledBack": phase == "Failed",
        }  # fmt: skip
    return VALID_BODIES[kind](**{**common, **extra})


def _builders_at(rev: str) -> Any:
    """The text builders as they were at git revision `rev`, loaded as a separate module.

    They live in audit/write/texts.py; older revisions had them in embeddings/texts.py.
    """
    import importlib.util
    import subprocess
    import tempfile

    for where in ("audit/write/texts.py", "embeddings/texts.py"):
        shown = subprocess.run(["git", "show", f"{rev}:{where}"], cwd=ROOT, capture_output=True, text=True)
        if shown.returncode == 0:
            source = shown.stdout
            break
    else:
        raise SystemExit(f"no text builders at revision {rev}")
    path = Path(tempfile.mkdtemp()) / "texts_at_rev.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("texts_at_rev", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def summary(label: str, values: list[float]) -> dict[str, Any]:
    ms = [v * 1000 for v in values]
    return {
        "label": label,
        "n": len(ms),
        "p50_ms": round(percentile(ms, 0.5), 2),
        "p95_ms": round(percentile(ms, 0.95), 2),
        "mean_ms": round(statistics.fmean(ms), 2) if ms else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--writes", type=int, default=500)
    parser.add_argument("--incidents", type=int, default=40)
    parser.add_argument("--latency-writes", type=int, default=200)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--redis-url", default=None)
    parser.add_argument("--start-redis", action="store_true")
    parser.add_argument(
        "--compare-builders-at",
        metavar="GIT_REV",
        default=None,
        help="also count the distinct texts the text builders of this git revision make of the same bodies",
    )
    args = parser.parse_args()

    os.environ["DJANGO_SETTINGS_MODULE"] = "kubernaut_storage.settings.local"
    os.environ.setdefault("EMBEDDED_POSTGRES_DATABASE", "kubernaut_bench")
    os.environ["DJANGO_ALLOWED_HOSTS"] = "testserver"
    os.environ.pop("EMBEDDING_OPENAI_API_KEY", None)
    os.environ.pop("OPENAI_API_KEY", None)
    redis_server = None
    if args.start_redis:
        from testutils.redis_server import RedisServer

        redis_server = RedisServer().start()
        os.environ["REDIS_URL"] = redis_server.url
    elif args.redis_url:
        os.environ["REDIS_URL"] = args.redis_url
    else:
        os.environ.pop("REDIS_URL", None)

    import django

    django.setup()
    import logging

    logging.disable(logging.WARNING)
    from django.core.management import call_command
    from django.test import Client, override_settings
    from prometheus_client import REGISTRY

    from audit.models import AuditKind
    from audit.write.texts import audit_text, payload_as_data
    from embeddings.services import embedding_runtime, embedding_runtime_reset
    from testutils.factories import endpoint

    call_command("migrate", verbosity=0)
    client = Client()
    rng = random.Random(args.seed)
    cache_kind = type(embedding_runtime().cache).__name__

    def cache_count(result: str) -> float:
        return REGISTRY.get_sample_value("kubernaut_embedding_cache_total", {"result": result}) or 0.0

    def post(kind: Any, body: dict[str, Any]) -> tuple[float, bool]:
        hits = cache_count("hit")
        started = time.perf_counter()
        response = client.post(endpoint(kind), data=json.dumps(body), content_type="application/json")
        elapsed = time.perf_counter() - started
        assert response.status_code == 201, response.content[:300]
        return elapsed, cache_count("hit") > hits

    kinds = list(AuditKind)
    # Warm the model and the connection: the first write's load time is not a write's cost.
    # Cache off for it, so the replay starts cold.
    with override_settings(EMBEDDING_CACHE_TTL_S=0):
        post(kinds[0], body_for(kinds[0], incidents(1, random.Random(-1))[0], rng))

    # --- phase 1: the replay ----------------------------------------------------------------
    catalogue = incidents(args.incidents, rng)
    weights = [1 / (rank + 1) for rank in range(len(catalogue))]  # Zipf, s = 1
    before = {r: cache_count(r) for r in ("hit", "miss", "error", "bypass")}
    hit_latency, miss_latency, distinct = [], [], set()
    texts: set[str] = set()
    old_texts: set[str] = set()
    old_builders = _builders_at(args.compare_builders_at) if args.compare_builders_at else None
    started = time.perf_counter()
    for _ in range(args.writes):
        incident = rng.choices(range(len(catalogue)), weights=weights)[0]
        kind = rng.choice(kinds)
        distinct.add((incident, kind))
        body = body_for(kind, catalogue[incident], rng)
        elapsed, hit = post(kind, body)
        texts.add(audit_text(kind=kind, data=payload_as_data(body)))
        if old_builders is not None:
            old_texts.add(old_builders.audit_text(kind=kind, data=payload_as_data(body)))
        (hit_latency if hit else miss_latency).append(elapsed)
    duration = time.perf_counter() - started
    counts = {r: cache_count(r) - before[r] for r in before}
    lookups = sum(counts.values())
    report: dict[str, Any] = {
        "cache": cache_kind,
        "replay": {
            "writes": args.writes,
            "incidents": args.incidents,
            "distinct_incident_kind_pairs_written": len(distinct),
            "distinct_texts": len(texts),
            "seconds": round(duration, 1),
            "cache_counts": counts,
            "hit_rate": round(counts["hit"] / lookups, 3) if lookups else None,
            "latency": [summary("hit", hit_latency), summary("miss", miss_latency)],
        },
    }

    if old_builders is not None:
        report["replay"][f"distinct_texts_with_builders_at_{args.compare_builders_at}"] = len(old_texts)

    # --- phase 2: latency, cache off (all misses) vs warm (all hits) ---------------------------
    fixed = catalogue[0]
    with override_settings(EMBEDDING_CACHE_TTL_S=0):
        misses = [post(kinds[0], body_for(kinds[0], fixed, rng))[0] for _ in range(args.latency_writes)]
    embedding_runtime_reset()
    post(kinds[0], body_for(kinds[0], fixed, rng))  # fills the cache
    hits = [post(kinds[0], body_for(kinds[0], fixed, rng))[0] for _ in range(args.latency_writes)]
    report["head_to_head"] = [summary("miss (cache off, local model)", misses), summary(f"hit ({cache_kind})", hits)]

    print(json.dumps(report, indent=2))
    if redis_server is not None:
        redis_server.stop()


if __name__ == "__main__":
    main()
