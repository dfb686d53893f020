"""The text each audit record is embedded as (DESIGN §5).

Deterministic and semantic: what happened and to what kind of thing — signal, target kind,
root cause, action, outcome — never ids, object names, namespaces, correlation ids or
timestamps. Two incidents that differ only in those get the same text, so they get the same
vector and the embedding cache hits.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from audit.models import AuditKind

Validated = Mapping[str, Any]


def _join(parts: list[tuple[str, Any]]) -> str:
    """`label: value` lines in a fixed order, skipping absent values."""
    lines = []
    for label, value in parts:
        if value is None or value == "" or value == []:
            continue
        if isinstance(value, bool):
            value = "yes" if value else "no"
        lines.append(f"{label}: {value}")
    return "\n".join(lines)


def remediation_text(data: Validated) -> str:
    return _join(
        [
            ("audit", "remediation request"),
            ("signal", f"{data['signal_type']} {data['signal_name']}"),
            ("target kind", data["target_type"]),
            ("environment", data.get("environment")),
            ("priority", data.get("priority")),
            ("phase", data["phase"]),
            ("reason", data.get("reason")),
            ("message", data.get("message")),
        ]
    )


def aianalysis_text(data: Validated) -> str:
    return _join(
        [
            ("audit", "ai analysis"),
            ("signal type", data.get("signal_type")),
            ("root cause", data.get("root_cause")),
            ("recommended action", data.get("recommended_action")),
            ("requires approval", data.get("requires_approval")),
            ("phase", data["phase"]),
            ("message", data.get("message")),
        ]
    )


def workflow_text(data: Validated) -> str:
    steps = ", ".join(f"{step['name']} {step['phase']}" for step in data.get("step_statuses", []))
    return _join(
        [
            ("audit", "workflow execution"),
            ("workflow", data["workflow_name"]),
            ("auto approved", data.get("is_auto_approved")),
            ("requires approval", data.get("requires_approval")),
            ("steps", steps),
            ("phase", data["phase"]),
            ("message", data.get("message")),
        ]
    )


def execution_text(data: Validated) -> str:
    return _join(
        [
            ("audit", "kubernetes execution"),
            ("action", data["action_type"]),
            ("target kind", data.get("target_type")),
            ("dry run", data.get("enable_dry_run")),
            ("result", data.get("action_result")),
            ("validation warnings", "; ".join(data.get("validation_warnings", []))),
            ("rolled back", data.get("is_rolled_back")),
            ("phase", data["phase"]),
            ("message", data.get("message")),
        ]
    )


AUDIT_TEXT_BUILDERS: dict[AuditKind, Callable[[Validated], str]] = {
    AuditKind.REMEDIATION: remediation_text,
    AuditKind.AI_ANALYSIS: aianalysis_text,
    AuditKind.WORKFLOW: workflow_text,
    AuditKind.EXECUTION: execution_text,
}


def audit_text(*, kind: AuditKind, data: Validated) -> str:
    return AUDIT_TEXT_BUILDERS[kind](data)
