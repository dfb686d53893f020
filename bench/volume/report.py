"""What `python -m bench volume` prints: each job's rate, its writes beside it, and what a month
at a sustained write rate would take."""

from __future__ import annotations

from typing import Any

#: Seconds in the 30-day month the extrapolation assumes.
MONTH_S = 30 * 86_400
#: Sustained write rates the extrapolation is given for (writes/s; one write = one record).
RATES = (100, 500)


def month_hours(*, rows_per_s: float | None, rows_per_write: float, rate: float) -> float | None:
    """Hours a job running at `rows_per_s` needs for a month written at `rate` writes/s."""
    if not rows_per_s:
        return None
    return rate * MONTH_S * rows_per_write / rows_per_s / 3600


def jobs_table(jobs: list[dict[str, Any]]) -> str:
    header = (
        f"{'job':<15} {'rows':>11} {'seconds':>9} {'rows/s':>9} {'job cpu s':>9} {'pg cpu s':>9} {'rss MB':>7}"
        f" {'writes/s alone':>14} {'during':>7} {'ratio':>6} {'p95 ms alone/during':>20}"
        + "".join(f" {f'month@{rate}/s h':>14}" for rate in RATES)
    )
    lines = [header, "-" * len(header)]
    for job in jobs:
        writes = job.get("writes") or {}
        alone, during = writes.get("alone") or {}, writes.get("during") or {}
        lines.append(
            f"{job['job']:<15} {_fmt(job.get('rows'), '{:,}'):>11} {job['seconds']:>9.1f}"
            f" {_fmt(job.get('rows_per_s'), '{:,.0f}'):>9} {job['cpu_s']:>9.1f} {job['postgres_cpu_s']:>9.1f}"
            f" {job['peak_rss_mb']:>7.0f} {_fmt(alone.get('writes_per_s'), '{:.1f}'):>14}"
            f" {_fmt(during.get('writes_per_s'), '{:.1f}'):>7} {_fmt(writes.get('ratio'), '{:.2f}'):>6}"
            f" {_fmt(alone.get('p95_ms'), '{:.0f}') + '/' + _fmt(during.get('p95_ms'), '{:.0f}'):>20}"
            + "".join(f" {_fmt(job.get('month_hours', {}).get(str(rate)), '{:,.1f}'):>14}" for rate in RATES)
        )
    return "\n".join(lines)


def sizes_table(sizes: dict[str, dict[str, Any]], per_record: dict[str, Any]) -> str:
    lines = [f"{'table':<22} {'rows':>11} {'GB':>7} {'B/row':>7} {'heap/toast/index B/row':>24}", "-" * 75]
    for table, size in sizes.items():
        parts = size["heap_toast_index_per_row"] or []
        per_row = _fmt(size["bytes_per_row"], "{:,}")
        lines.append(
            f"{table:<22} {size['rows']:>11,} {size['total_bytes'] / 1e9:>7.2f} {per_row:>7}"
            f" {'/'.join(str(part) for part in parts):>24}"
        )
    lines.append(
        f"bytes per typed record (audit row + embedding row): {_fmt(per_record['typed_record'], '{:,}')}"
        f" (audit {_fmt(per_record['audit_row'], '{:,}')}, embedding {_fmt(per_record['embedding_row'], '{:,}')});"
        f" per event {_fmt(per_record['event'], '{:,}')}"
    )
    return "\n".join(lines)


def pages_table(pages: list[dict[str, Any]]) -> str:
    lines = [f"{'page':<34} {'status':>8} {'min ms':>8} {'median':>8} {'max':>8} {'queries':>8}", "-" * 80]
    for page in pages:
        lines.append(
            f"{page['page'][:34]:<34} {','.join(map(str, page['status'])):>8} {page['min_ms']:>8.0f}"
            f" {page['median_ms']:>8.0f} {page['max_ms']:>8.0f} {page['queries']:>8}"
        )
    return "\n".join(lines)


def _fmt(value: Any, fmt: str) -> str:
    return "-" if value is None else fmt.format(value)
