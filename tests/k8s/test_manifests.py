"""The Kubernetes manifests, offline: every overlay rendered with `kubectl kustomize`, every
object validated against Kubernetes 1.30's and 1.33's schemas (kubernetes-validate) or the
Prometheus Operator's CRD schemas (tests/k8s/schemas), and consistent with the application: the
variables they set are ones it reads, the probes hit its paths and ports, every Secret key is
documented, every periodic command has a CronJob that runs it with arguments it accepts.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
from django.core.management import load_command_class
from django.core.management.base import CommandError

from kubernaut_storage.observability.health import HEALTHZ_PATH, READYZ_PATH
from testutils.environment_reads import variables_read
from testutils.k8s import REPO, loose, of_kind, one, our_workloads, pod_spec, rendered

OVERLAYS = ("base", "overlays/production", "overlays/dev")
KUBERNETES_VERSIONS = ("1.30.0", "1.33.0")
CRD_SCHEMAS = {
    ("monitoring.coreos.com/v1", "PrometheusRule"): "monitoring.coreos.com_v1_prometheusrule.json",
    ("monitoring.coreos.com/v1", "ServiceMonitor"): "monitoring.coreos.com_v1_servicemonitor.json",
}
# Read by the process itself, not by our code: glibc's allocator and the Python interpreter.
PROCESS_VARIABLES = {"MALLOC_ARENA_MAX", "MALLOC_MMAP_THRESHOLD_", "PYTHONDONTWRITEBYTECODE"}
# Each command run periodically (README "Operating it") and the app that defines it.
PERIODIC_COMMANDS = {
    "audit_partitions_ensure": "audit",
    "audit_retention": "audit",
    "idempotency_keys_prune": "audit",
    "events_dedupe_prune": "audit",
    "embeddings_index_build": "embeddings",
    "embeddings_backfill": "audit",
    "audit_seal": "audit",
    "audit_verify": "audit",
}
# Destructive commands act only with --yes: a CronJob without it would only ever plan.
NEEDS_YES = {"audit_retention", "idempotency_keys_prune", "events_dedupe_prune"}


def all_documents() -> list[tuple[str, dict[str, Any]]]:
    documents = [(overlay, document) for overlay in OVERLAYS for document in rendered(overlay)]
    documents += [(name, document) for name in ("job-migrate.yaml", "secret.example.yaml") for document in loose(name)]
    return documents


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_every_object_is_valid_for_kubernetes(version):
    checked = 0
    for source, document in all_documents():
        if (document["apiVersion"], document["kind"]) in CRD_SCHEMAS:
            continue
        try:
            kubernetes_validate.validate(document, version, strict=True)
        except kubernetes_validate.ValidationError as error:
            pytest.fail(f"{source}: {document['kind']}/{document['metadata']['name']}: {error.message}")
        checked += 1
    assert checked >= 40


def test_the_validator_refuses_a_misspelled_field():
    # Proves the strict schemas are really loaded: an unknown field is an error, not ignored.
    deployment = json.loads(json.dumps(one(rendered("base"), "Deployment", "kubernaut-storage")))
    deployment["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["periodSecond"] = 5
    with pytest.raises(kubernetes_validate.ValidationError, match="periodSecond"):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSIONS[0], strict=True)


def crd_validator(api_version: str, kind: str) -> jsonschema.protocols.Validator:
    schema = json.loads((REPO / "tests" / "k8s" / "schemas" / CRD_SCHEMAS[(api_version, kind)]).read_text())
    return jsonschema.Draft7Validator(schema)


def test_prometheus_operator_objects_match_their_crd_schemas():
    documents = rendered("overlays/production")
    found = set()
    for document in documents:
        key = (document["apiVersion"], document["kind"])
        if key in CRD_SCHEMAS:
            errors = [error.message for error in crd_validator(*key).iter_errors(document)]
            assert errors == [], (document["kind"], errors)
            found.add(document["kind"])
    assert found == {"PrometheusRule", "ServiceMonitor"}
    # Only production has them: dev clusters need not run the Prometheus Operator.
    assert not [doc for doc in rendered("overlays/dev") if (doc["apiVersion"], doc["kind"]) in CRD_SCHEMAS]

    broken = json.loads(json.dumps(one(documents, "PrometheusRule")))
    broken["spec"]["groups"][0]["rules"][0]["for"] = "10 minutes"
    broken["spec"]["groups"][0]["rules"][1]["exp"] = "up"
    validator = crd_validator("monitoring.coreos.com/v1", "PrometheusRule")
    messages = [error.message for error in validator.iter_errors(broken)]
    assert any("10 minutes" in message for message in messages), messages
    assert any("'exp' was unexpected" in message for message in messages), messages


def test_the_alerts_cover_the_failures_and_read_metrics_the_service_exports():
    groups = one(rendered("overlays/production"), "PrometheusRule")["spec"]["groups"]
    rules = [rule for group in groups for rule in group["rules"]]
    metrics_modules = (
        REPO / "kubernaut_storage" / "observability" / "metrics.py",
        REPO / "audit" / "integrity" / "metrics.py",
    )
    exported = {name for module in metrics_modules for name in re.findall(r'"(kubernaut_[a-z_]+)"', module.read_text())}
    for rule in rules:
        for name in re.findall(r"\b(kubernaut_[a-z_]+)", rule["expr"]):
            base = re.sub(r"_(bucket|count|sum)$", "", name)
            assert base in exported, (rule["alert"], name)
    by_name = {rule["alert"]: rule["expr"] for rule in rules}
    assert 'status="5xx"' in by_name["KubernautStorageHighErrorRatio"]
    assert "histogram_quantile(0.95" in by_name["KubernautStorageWriteLatencySLO"]
    assert "> 0.25" in by_name["KubernautStorageWriteLatencySLO"]
    assert "kubernaut_embedding_deferrals_total" in by_name["KubernautStorageEmbeddingsPending"]
    assert 'check="partitions"' in by_name["KubernautStoragePartitionMissing"]
    assert 'outcome="unavailable"' in by_name["KubernautStorageDatabaseUnavailable"]
    assert "absent(up{" in by_name["KubernautStorageMetricsMissing"]
    assert "kubernaut_audit_anchor_lag_seconds" in by_name["KubernautStorageAnchorLag"]
    assert "kubernaut_audit_witness_inconsistent" in by_name["KubernautStorageWitnessInconsistent"]


def configuration_table() -> str:
    readme = (REPO / "README.md").read_text()
    return readme.split("| variable | default | meaning |", 1)[1].split("\n\n", 1)[0]


def variables_set(documents: tuple[dict[str, Any], ...] | list[dict[str, Any]]) -> set[str]:
    names = {key for configmap in of_kind(documents, "ConfigMap") for key in configmap["data"]}
    for workload in our_workloads(documents):
        for container in pod_spec(workload)["containers"]:
            names |= {variable["name"] for variable in container.get("env", [])}
    return names


def test_every_variable_the_manifests_set_is_read_by_the_service_and_documented():
    assert {"DATABASE_URL", "GUNICORN_BIND", "METRICS_TOKEN", "AUDIT_WRITERS_REMEDIATION"} <= variables_read()
    table = configuration_table()
    documents = [doc for overlay in OVERLAYS for doc in rendered(overlay)] + loose("job-migrate.yaml")
    names = variables_set(documents)
    assert {"DATABASE_URL", "REDIS_URL", "AUDIT_ARCHIVE_DIR", "MALLOC_ARENA_MAX"} <= names
    unread = names - variables_read() - PROCESS_VARIABLES
    assert unread == set(), f"set by the manifests, read by nothing: {sorted(unread)}"
    undocumented = {name for name in names if f"`{name}`" not in table}
    assert undocumented == set(), f"missing from README's Configuration table: {sorted(undocumented)}"


def test_probes_and_ports_match_the_service():
    documents = rendered("overlays/production")
    data = one(documents, "ConfigMap")["data"]
    api_port = int(data["GUNICORN_BIND"].rsplit(":", 1)[1])
    metrics_port = int(data["METRICS_BIND"].rsplit(":", 1)[1])
    container = pod_spec(one(documents, "Deployment", "kubernaut-storage"))["containers"][0]
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}
    assert ports == {"http": api_port, "metrics": metrics_port}
    probes = {kind: container[kind]["httpGet"] for kind in ("startupProbe", "livenessProbe", "readinessProbe")}
    # Liveness never depends on the database; readiness does.
    assert probes["startupProbe"] == {"path": HEALTHZ_PATH, "port": "http"}
    assert probes["livenessProbe"] == {"path": HEALTHZ_PATH, "port": "http"}
    assert probes["readinessProbe"] == {"path": READYZ_PATH, "port": "http"}
    service = one(documents, "Service", "kubernaut-storage")
    assert {(port["port"], port["targetPort"]) for port in service["spec"]["ports"]} == {
        (api_port, "http"),
        (metrics_port, "metrics"),
    }
    # Upstream Kubernaut's controllers call data-storage-service:8080: the same pods' API port.
    upstream = one(documents, "Service", "data-storage-service")
    assert upstream["spec"]["selector"] == service["spec"]["selector"]
    assert [(port["port"], port["targetPort"]) for port in upstream["spec"]["ports"]] == [(8080, "http")]
    monitor = one(documents, "ServiceMonitor")
    assert [endpoint["port"] for endpoint in monitor["spec"]["endpoints"]] == ["metrics"]
    assert monitor["spec"]["endpoints"][0]["path"] == "/metrics"
    ingress = one(documents, "NetworkPolicy", "kubernaut-storage-ingress")
    assert sorted(port["port"] for rule in ingress["spec"]["ingress"] for port in rule["ports"]) == [
        api_port,
        metrics_port,
    ]
    # The drain fits in the grace period: preStop sleep + drain delay + graceful timeout.
    spec = pod_spec(one(documents, "Deployment", "kubernaut-storage"))
    drain = (
        container["lifecycle"]["preStop"]["sleep"]["seconds"]
        + float(data["GUNICORN_DRAIN_DELAY_SECONDS"])
        + float(data["GUNICORN_GRACEFUL_TIMEOUT"])
    )
    assert drain < spec["terminationGracePeriodSeconds"]


def secret_key_refs(documents: tuple[dict[str, Any], ...] | list[dict[str, Any]]) -> set[tuple[str, str, bool]]:
    refs = set()
    for workload in our_workloads(documents):
        for container in pod_spec(workload)["containers"]:
            for variable in container.get("env", []):
                ref = variable.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    refs.add((ref["name"], ref["key"], bool(ref.get("optional", False))))
    return refs


def test_every_secret_key_referenced_is_documented_and_dev_provides_the_required_ones():
    example = {doc["metadata"]["name"]: set(doc["stringData"]) for doc in loose("secret.example.yaml")}
    refs = secret_key_refs(list(rendered("overlays/production")) + loose("job-migrate.yaml"))
    assert ("kubernaut-storage-owner", "DATABASE_URL", False) in refs
    table = configuration_table()
    for name, key, _optional in refs:
        assert key in example.get(name, set()), f"{name}/{key} is not in k8s/secret.example.yaml"
        assert f"`{key}`" in table, f"{key} is not in README's Configuration table"

    dev = rendered("overlays/dev")
    generated = {doc["metadata"]["name"]: set(doc["data"]) for doc in of_kind(dev, "Secret")}
    for name, key, optional in secret_key_refs(dev):
        assert optional or key in generated.get(name, set()), f"dev lacks {name}/{key}"


def test_every_periodic_command_has_a_cronjob_that_runs_it_safely():
    documents = rendered("overlays/production")
    deployment_container = pod_spec(one(documents, "Deployment", "kubernaut-storage"))["containers"][0]
    commands = {}
    for cronjob in of_kind(documents, "CronJob"):
        spec = cronjob["spec"]
        assert spec["concurrencyPolicy"] == "Forbid", cronjob["metadata"]["name"]
        assert spec["successfulJobsHistoryLimit"] <= 3
        assert spec["failedJobsHistoryLimit"] <= 3
        pod = pod_spec(cronjob)
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["runAsUser"] == 10001
        (container,) = pod["containers"]
        assert container["securityContext"] == deployment_container["securityContext"]
        assert container["resources"]["requests"]["memory"]
        assert container["resources"]["limits"]["memory"]
        assert container["image"] == deployment_container["image"]
        python, manage, name, *args = container["command"]
        assert (python, manage) == ("python", "manage.py")
        commands[name] = args
    assert set(commands) >= set(PERIODIC_COMMANDS), sorted(set(PERIODIC_COMMANDS) - set(commands))
    for name, args in commands.items():
        command = load_command_class(PERIODIC_COMMANDS[name], name)
        parser = command.create_parser("manage.py", name)
        try:
            parser.parse_args(args)
        except (CommandError, SystemExit) as error:
            pytest.fail(f"{name} {args}: {error}")
        assert ("--yes" in args) == (name in NEEDS_YES), (name, args)


def test_autoscaling_disruption_and_connections_fit_together():
    documents = rendered("overlays/production")
    deployment = one(documents, "Deployment", "kubernaut-storage")
    assert "replicas" not in deployment["spec"], "the HPA owns the replica count"
    hpa = one(documents, "HorizontalPodAutoscaler")
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "kubernaut-storage"}
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (2, 5)
    (metric,) = hpa["spec"]["metrics"]
    assert metric["resource"] == {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}}
    assert hpa["spec"]["behavior"]["scaleDown"]["stabilizationWindowSeconds"] >= 300
    pdb = one(documents, "PodDisruptionBudget")
    assert pdb["spec"] == {"maxUnavailable": 1, "selector": deployment["spec"]["selector"]}
    data = one(documents, "ConfigMap")["data"]
    connections = hpa["spec"]["maxReplicas"] * int(data["GUNICORN_WORKERS"]) * int(data["DATABASE_POOL_SIZE"])
    assert f"{connections} connections" in (REPO / "docs" / "SCALING.md").read_text()


def test_the_migration_job_runs_the_released_image():
    (job,) = loose("job-migrate.yaml")
    image = pod_spec(one(rendered("overlays/production"), "Deployment", "kubernaut-storage"))["containers"][0]["image"]
    assert pod_spec(job)["containers"][0]["image"] == image
    # Jobs are immutable: the name carries the version so each release gets its own.
    assert job["metadata"]["name"] == "kubernaut-storage-migrate-" + image.rsplit(":", 1)[1].replace(".", "-")
    dev_job = one(rendered("overlays/dev"), "Job")
    assert pod_spec(dev_job)["containers"][0]["command"] == pod_spec(job)["containers"][0]["command"]


HSTS_PROBE = (
    "import django; django.setup(); from django.test import Client; "
    "answer = Client().get("
    "'/api/v1/audit/remediation', HTTP_HOST='kubernaut-storage', HTTP_X_FORWARDED_PROTO='https'); "
    "print(answer.status_code, answer.get('Strict-Transport-Security'))"
)


def _answer_behind_a_tls_ingress(configmap: dict[str, str]) -> str:
    """A request the ingress forwarded from https, to the settings the overlay's ConfigMap makes."""
    env = {
        **configmap,
        "DJANGO_SECRET_KEY": "a-real-secret-from-a-kubernetes-secret",
        "DATABASE_URL": "postgres://app@db.invalid:5432/kubernaut",  # never connected to here
        "LOG_LEVEL": "ERROR",
        "PATH": "/usr/bin:/bin",
    }
    command = [sys.executable, "-c", HSTS_PROBE]
    result = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_production_sends_hsts_behind_its_tls_ingress():
    production = one(rendered("overlays/production"), "ConfigMap")["data"]
    assert int(production["DJANGO_SECURE_HSTS_SECONDS"]) >= 365 * 24 * 3600
    assert production["DJANGO_TRUST_X_FORWARDED_PROTO"] == "true"
    assert _answer_behind_a_tls_ingress(production) == "401 max-age=31536000"
    # The base alone (and dev, served over plain http) neither sends it nor believes the header.
    base = one(rendered("base"), "ConfigMap")["data"]
    assert {"DJANGO_SECURE_HSTS_SECONDS", "DJANGO_TRUST_X_FORWARDED_PROTO"}.isdisjoint(base)
    assert _answer_behind_a_tls_ingress(base) == "401 None"
