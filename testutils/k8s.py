"""Rendering and reading the Kubernetes manifests for the offline tests (`kubectl kustomize`)."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parent.parent
K8S = REPO / "k8s"


@cache
def rendered(overlay: str) -> tuple[dict[str, Any], ...]:
    kubectl = shutil.which("kubectl")
    assert kubectl is not None, "kubectl is required to render the kustomizations"
    output = subprocess.run([kubectl, "kustomize", str(K8S / overlay)], check=True, capture_output=True, text=True)
    return tuple(document for document in yaml.safe_load_all(output.stdout) if document)


def loose(name: str) -> list[dict[str, Any]]:
    """Manifests outside any kustomization (applied by hand or never applied)."""
    return [document for document in yaml.safe_load_all((K8S / name).read_text()) if document]


def of_kind(documents: tuple[dict[str, Any], ...] | list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [document for document in documents if document["kind"] == kind]


def one(documents: tuple[dict[str, Any], ...], kind: str, name: str | None = None) -> dict[str, Any]:
    matches = [doc for doc in of_kind(documents, kind) if name is None or doc["metadata"]["name"] == name]
    assert len(matches) == 1, (kind, name, [doc["metadata"]["name"] for doc in matches])
    return matches[0]


def pod_spec(document: dict[str, Any]) -> dict[str, Any]:
    if document["kind"] == "CronJob":
        return dict(document["spec"]["jobTemplate"]["spec"]["template"]["spec"])
    return dict(document["spec"]["template"]["spec"])


def our_workloads(documents: tuple[dict[str, Any], ...] | list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """The Deployment, CronJobs and Jobs running the kubernaut-storage image (not dev's Redis)."""
    for document in documents:
        if document["kind"] in ("Deployment", "CronJob", "Job") and any(
            "kubernaut-storage" in container["image"] for container in pod_spec(document)["containers"]
        ):
            yield document
