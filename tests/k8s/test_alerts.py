"""The PrometheusRule's alerts, run by Prometheus' own rule engine (`promtool test rules`, from
Debian's `prometheus` package, which scripts/test installs): each fires on the series that mean
trouble, after its `for`, and stays silent on healthy ones."""

from __future__ import annotations

import copy
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from testutils.k8s import one, rendered

JOB = 'job="kubernaut-storage"'


def rules_file(directory: Path) -> Path:
    """The rule groups as a Prometheus rules file. Annotations are left out: the tests below
    check when each alert fires and with which labels, not its rendered text."""
    groups = copy.deepcopy(one(rendered("overlays/production"), "PrometheusRule")["spec"]["groups"])
    for group in groups:
        for rule in group["rules"]:
            rule.pop("annotations", None)
    path = directory / "rules.yaml"
    path.write_text(yaml.safe_dump({"groups": groups}))
    return path


def promtool(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("promtool")
    assert binary is not None, "promtool is required (Debian: apt-get install prometheus)"
    return subprocess.run([binary, *args], cwd=cwd, capture_output=True, text=True, check=False)


def test_the_rules_parse(tmp_path):
    result = promtool("check", "rules", str(rules_file(tmp_path)), cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 10 rules found" in result.stdout, result.stdout


def latency_buckets(*, fast: int, slow: int) -> list[dict[str, str]]:
    """A POST endpoint's latency histogram growing by `fast` (≤ 0.25 s) + `slow` (0.25 to 0.5 s)
    requests a minute."""
    labels = f'{JOB}, method="POST", endpoint="/api/v1/audit/remediation", status="2xx"'
    return [
        {"series": f'kubernaut_http_request_duration_seconds_bucket{{{labels}, le="{le}"}}', "values": values}
        for le, values in (
            ("0.1", f"0+{fast}x60"),
            ("0.25", f"0+{fast}x60"),
            ("0.5", f"0+{fast + slow}x60"),
            ("+Inf", f"0+{fast + slow}x60"),
        )
    ]


def fires(alert: str, at: str, labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {"eval_time": at, "alertname": alert, "exp_alerts": [{"exp_labels": labels or {}}]}


def silent(alert: str, at: str) -> dict[str, Any]:
    return {"eval_time": at, "alertname": alert, "exp_alerts": []}


def writes(outcome: str) -> str:
    return f'kubernaut_audit_writes_total{{{JOB}, kind="remediation", outcome="{outcome}"}}'


CRITICAL = {"severity": "critical"}
WARNING = {"severity": "warning"}
FAILED_JOB = "kubernaut-storage-backfill-29412345"

CASES: dict[str, dict[str, Any]] = {
    "5xx ratio above 1 %": {
        "input_series": [
            {"series": f'kubernaut_http_request_duration_seconds_count{{{JOB}, status="2xx"}}', "values": "0+98x60"},
            {"series": f'kubernaut_http_request_duration_seconds_count{{{JOB}, status="5xx"}}', "values": "0+2x60"},
        ],
        "alert_rule_test": [
            silent("KubernautStorageHighErrorRatio", "8m"),
            fires("KubernautStorageHighErrorRatio", "20m", CRITICAL),
        ],
    },
    "5xx ratio below 1 %": {
        "input_series": [
            {"series": f'kubernaut_http_request_duration_seconds_count{{{JOB}, status="2xx"}}', "values": "0+999x60"},
            {"series": f'kubernaut_http_request_duration_seconds_count{{{JOB}, status="5xx"}}', "values": "0+1x60"},
        ],
        "alert_rule_test": [silent("KubernautStorageHighErrorRatio", "30m")],
    },
    "write p95 above 250 ms": {
        "input_series": latency_buckets(fast=90, slow=10),
        "alert_rule_test": [
            silent("KubernautStorageWriteLatencySLO", "10m"),
            fires("KubernautStorageWriteLatencySLO", "25m", WARNING),
        ],
    },
    "write p95 within 250 ms": {
        "input_series": latency_buckets(fast=99, slow=1),
        "alert_rule_test": [silent("KubernautStorageWriteLatencySLO", "30m")],
    },
    "records deferred for hours": {
        "input_series": [{"series": f"kubernaut_embedding_deferrals_total{{{JOB}}}", "values": "0+1x240"}],
        "alert_rule_test": [
            silent("KubernautStorageEmbeddingsPending", "1h"),
            fires("KubernautStorageEmbeddingsPending", "2h30m", WARNING),
        ],
    },
    "one deferral, then none": {
        "input_series": [{"series": f"kubernaut_embedding_deferrals_total{{{JOB}}}", "values": "0 1x240"}],
        "alert_rule_test": [silent("KubernautStorageEmbeddingsPending", "3h30m")],
    },
    "next month's partition missing": {
        "input_series": [
            {"series": f'kubernaut_readiness_check_failing{{{JOB}, check="partitions", pod="a"}}', "values": "1x60"},
            {"series": f'kubernaut_readiness_check_failing{{{JOB}, check="partitions", pod="b"}}', "values": "0x60"},
        ],
        "alert_rule_test": [
            silent("KubernautStoragePartitionMissing", "20m"),
            fires("KubernautStoragePartitionMissing", "40m", CRITICAL),
        ],
    },
    "partitions present": {
        "input_series": [
            {"series": f'kubernaut_readiness_check_failing{{{JOB}, check="partitions", pod="a"}}', "values": "0x60"},
            {"series": f'kubernaut_readiness_check_failing{{{JOB}, check="database", pod="a"}}', "values": "1x60"},
        ],
        "alert_rule_test": [silent("KubernautStoragePartitionMissing", "50m")],
    },
    "503s from the database": {
        "input_series": [
            {"series": writes("unavailable"), "values": "0+5x30"},
            {"series": writes("created"), "values": "0+100x30"},
        ],
        "alert_rule_test": [fires("KubernautStorageDatabaseUnavailable", "15m", CRITICAL)],
    },
    "no 503s": {
        "input_series": [
            {"series": writes("unavailable"), "values": "3x30"},
            {"series": writes("created"), "values": "0+100x30"},
        ],
        "alert_rule_test": [silent("KubernautStorageDatabaseUnavailable", "20m")],
    },
    "targets down": {
        "input_series": [{"series": f'up{{{JOB}, pod="a"}}', "values": "0x30"}],
        "alert_rule_test": [fires("KubernautStorageMetricsMissing", "15m", WARNING)],
    },
    "no target at all": {
        "input_series": [{"series": 'up{job="something-else"}', "values": "1x30"}],
        "alert_rule_test": [fires("KubernautStorageMetricsMissing", "15m", WARNING)],
    },
    "targets up": {
        "input_series": [{"series": f'up{{{JOB}, pod="a"}}', "values": "1x30"}],
        "alert_rule_test": [silent("KubernautStorageMetricsMissing", "20m")],
    },
    "a maintenance Job failed": {
        "input_series": [
            {
                "series": f'kube_job_status_failed{{namespace="kubernaut-system", job_name="{FAILED_JOB}"}}',
                "values": "1x20",
            },
            {"series": 'kube_job_status_failed{namespace="other", job_name="kubernaut-storage-x"}', "values": "1x20"},
        ],
        "alert_rule_test": [
            fires(
                "KubernautStorageCronJobFailed",
                "10m",
                {"severity": "warning", "job_name": FAILED_JOB},
            )
        ],
    },
    "checkpoints not time-stamped for half an hour": {
        "input_series": [
            {"series": f'kubernaut_audit_anchor_lag_seconds{{{JOB}, pod="a"}}', "values": "0+60x60"},
            {"series": f'kubernaut_audit_anchor_lag_seconds{{{JOB}, pod="b"}}', "values": "0+60x60"},
        ],
        "alert_rule_test": [
            silent("KubernautStorageAnchorLag", "35m"),
            fires("KubernautStorageAnchorLag", "45m", WARNING),
        ],
    },
    "checkpoints time-stamped every interval": {
        "input_series": [
            # Grows to ten minutes and back to zero with each anchor.
            {"series": f'kubernaut_audit_anchor_lag_seconds{{{JOB}, pod="a"}}', "values": "0+60x10 0+60x10 0+60x10"},
        ],
        "alert_rule_test": [silent("KubernautStorageAnchorLag", "30m")],
    },
    "a witness holds another history": {
        "input_series": [
            {
                "series": f'kubernaut_audit_witness_inconsistent{{{JOB}, pod="a", witness="w1+abcd"}}',
                "values": "0 0 1x10",
            },
            {"series": f'kubernaut_audit_witness_inconsistent{{{JOB}, pod="a", witness="w2+ef01"}}', "values": "0x12"},
        ],
        "alert_rule_test": [
            silent("KubernautStorageWitnessInconsistent", "1m"),
            fires("KubernautStorageWitnessInconsistent", "3m", {"severity": "critical", "witness": "w1+abcd"}),
        ],
    },
    "a witness unreachable for an hour": {
        "input_series": [
            {
                "series": f'kubernaut_audit_witness_lag_seconds{{{JOB}, pod="a", witness="w1+abcd"}}',
                "values": "0+60x90",
            },
            {"series": f'kubernaut_audit_witness_lag_seconds{{{JOB}, pod="a", witness="w2+ef01"}}', "values": "0x90"},
        ],
        "alert_rule_test": [
            silent("KubernautStorageWitnessLag", "70m"),
            fires("KubernautStorageWitnessLag", "80m", {"severity": "warning", "witness": "w1+abcd"}),
        ],
    },
}


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_alert(case, tmp_path):
    rules = rules_file(tmp_path)
    tests = {"rule_files": [rules.name], "evaluation_interval": "1m", "tests": [{"interval": "1m", **CASES[case]}]}
    (tmp_path / "tests.yaml").write_text(yaml.safe_dump(tests))
    result = promtool("test", "rules", "tests.yaml", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
