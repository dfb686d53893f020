"""bench/scripts/local_backends.py (docs/EMBEDDINGS.md): its ONNX child, the half that needs no
torch, on a few texts."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from testutils.bench_runs import bench_run


def test_the_onnx_child_measures_the_local_provider_and_saves_its_vectors(tmp_path: Path):
    out = tmp_path / "onnx.npy"
    stdout = bench_run(["bench/scripts/local_backends.py", "--child", "onnx", "--texts", "4", "--out", str(out)])

    report = json.loads(stdout.strip().splitlines()[-1])
    assert report["backend"] == "onnx"
    assert report["single_median_ms"] > 0
    assert report["batch32_records_per_s"] > 0
    assert report["installed_mb"] > 0
    vectors = np.load(out)
    assert vectors.shape == (4, 384)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-3)
