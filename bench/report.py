"""The benchmark's outputs: the table, the closing summary line, and the JSON file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

COLUMNS = (
    ("scenario", "scenario", "{}"),
    ("conc", "concurrency", "{}"),
    ("requests", "requests", "{}"),
    ("batch", "batch_size", "{}"),
    ("requests/s", "writes_per_s", "{:.0f}"),
    ("records/s", "records_per_s", "{:.0f}"),
    ("p50 ms", "p50_ms", "{:.1f}"),
    ("p95 ms", "p95_ms", "{:.1f}"),
    ("p99 ms", "p99_ms", "{:.1f}"),
    ("non-2xx", "non2xx", "{}"),
    ("errors", "errors", "{}"),
    # The service's own histograms: time inside the service, per embedding call, texts a call.
    ("svc ms", "service_mean_ms", "{:.1f}"),
    ("embed ms", "embedding_call_mean_ms", "{:.1f}"),
    ("texts/call", "texts_per_embedding_call", "{:.1f}"),
)


def _cell(row: dict[str, Any], key: str, fmt: str) -> str:
    value = row.get(key)
    return "-" if value is None else fmt.format(value)


def _workers_cell(row: dict[str, Any]) -> str:
    workers = row.get("workers")
    if not workers:
        return "-"
    return " ".join(f"{w['cpu_pct']:.0f}%/{w['peak_rss_mb']:.0f}MB" for w in workers)


def _other_cpu_cell(row: dict[str, Any]) -> str:
    """Who else used the two cores: wrk, Redis and the remote embedder (or the ceiling's client),
    and "foreign": every process of the machine that is not part of the run."""
    parts = [(name, row.get(f"{name}_cpu_pct")) for name in ("client", "wrk", "redis", "embedder", "foreign")]
    return " ".join(f"{name} {value:.0f}%" for name, value in parts if value is not None) or "-"


def table(rows: list[dict[str, Any]]) -> str:
    """A fixed-width table: one line per scenario; CPU in % of one core, peak RSS per worker."""
    headers = [title for title, _, _ in COLUMNS] + ["postgres CPU", "other CPU", "worker CPU/peak RSS (each)"]
    body = [
        [_cell(row, key, fmt) for _, key, fmt in COLUMNS]
        + [_cell(row, "postgres_cpu_pct", "{:.0f}%"), _other_cpu_cell(row), _workers_cell(row)]
        for row in rows
    ]
    widths = [max(len(line[i]) for line in [headers, *body]) for i in range(len(headers))]
    lines = [
        "  ".join(cell.rjust(width) for cell, width in zip(line, widths, strict=True)) for line in [headers, *body]
    ]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


def summary_line(rows: list[dict[str, Any]]) -> str:
    """`scenario=cached writes_per_s=… … ceiling_writes_per_s=… ratio=…`: the run in one line."""
    by_name = {row["scenario"]: row for row in rows}
    cached, ceiling = by_name.get("cached"), by_name.get("ceiling")
    parts = ["scenario=cached"]
    for key in ("writes_per_s", "p50_ms", "p95_ms", "p99_ms"):
        parts.append(f"{key}={_cell(cached or {}, key, '{:.1f}')}")
    parts.append(f"ceiling_writes_per_s={_cell(ceiling or {}, 'writes_per_s', '{:.1f}')}")
    ratio = cached["writes_per_s"] / ceiling["writes_per_s"] if cached and ceiling and ceiling["writes_per_s"] else None
    parts.append(f"ratio={'-' if ratio is None else f'{ratio:.2f}'}")
    for row in rows:
        if row["scenario"].startswith("batch-"):
            # Records/s of the batch endpoint beside the same ceiling, and its latency per batch.
            name = row["scenario"].replace("-", "")
            parts.append(f"{name}_records_per_s={row['records_per_s']:.1f} {name}_p95_ms={row['p95_ms']:.1f}")
            batch_ratio = (
                row["records_per_s"] / ceiling["writes_per_s"] if ceiling and ceiling["writes_per_s"] else None
            )
            parts.append(f"{name}_ratio={'-' if batch_ratio is None else f'{batch_ratio:.2f}'}")
    return " ".join(parts)


def results_write(path: Path, run: dict[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(run, indent=2) + "\n")
    return path
