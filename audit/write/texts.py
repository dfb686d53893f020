"""The text each audit record is embedded as.

Deterministic and semantic: what happened and to what kind of thing — signal, target kind,
root cause, action, outcome — never ids, object names, namespaces, correlation ids or
timestamps. Two incidents that differ only in those get the same text, so they get the same
vector and the embedding cache hits.

Free text (`message`, `reason`, `rootCause`, `recommendedAction`, `actionResult`, validation
warnings) is kept: it carries most of the meaning an LLM or an operator wrote down. But writers
routinely put object names in it ("OOMKilled pod payments-api-7d9f8b6c4-x2x9q in payments"),
which would make every incident's text unique. So free text is normalised:

* the record's own identifiers (its name, namespace, target name and namespace, references,
  correlation id, fingerprint, versions, and the application name its `app` /
  `app.kubernetes.io/name|instance` / `k8s-app` label holds) are replaced by a placeholder
  naming their role wherever they occur as a whole token (`payments-api` → `<target>`,
  `payments` → `<namespace>`); identifiers shorter than 3 characters are left alone, since
  replacing `a` or `db` everywhere would destroy ordinary words;
* volatile tokens that no record field names are replaced by their kind: UUIDs (`<uuid>`),
  RFC 3339 timestamps (`<time>`), IPv4 addresses (`<ip>`), ReplicaSet pod names
  (`name-<hash>-<suffix>` → `<pod>`) and long hex ids such as container ids (`<hex>`);
* runs of whitespace become one space, so line breaks cannot forge a `label: value` line.

What this cannot catch: a name that neither a field nor a name label of the record carries
and that has no generated suffix ("restarted checkout-api" in a workflow record labelled
otherwise). Such texts still embed correctly; they only share fewer cache entries.

Left out on purpose: labels and `actionData` (object names and values), confidence,
temperature, token counts and durations (numbers that differ on every record), LLM
provider/model (who analysed, not what happened), step messages and retry counts.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from audit.models import AuditKind

Validated = Mapping[str, Any]

#: (field, placeholder) of every identifier a record can carry, longest-lived roles first.
_IDENTIFIER_FIELDS: tuple[tuple[str, str], ...] = (
    ("correlation_id", "<correlation-id>"),
    ("fingerprint", "<fingerprint>"),
    ("investigation_id", "<investigation>"),
    ("remediation_request_ref", "<remediation>"),
    ("ai_analysis_ref", "<analysis>"),
    ("workflow_execution_ref", "<workflow-execution>"),
    ("target_name", "<target>"),
    ("name", "<name>"),
    ("step_name", "<step>"),
    ("resource_version", "<version>"),
    ("previous_version", "<version>"),
    ("target_namespace", "<namespace>"),
    ("signal_namespace", "<namespace>"),
    ("namespace", "<namespace>"),
)
#: Labels that by Kubernetes convention hold the application's name: records that carry no
#: target name (AI analyses, workflows) still name the workload in free text, and their
#: labels are how we know that word is a name.
_NAME_LABELS: tuple[str, ...] = ("app.kubernetes.io/name", "app.kubernetes.io/instance", "app", "k8s-app")
_MIN_IDENTIFIER_LENGTH = 3

#: k8s.io/apimachinery's rand.SafeEncodeString alphabet: no vowels, no 0, 1 or 3.
_SAFE = "bcdfghjklmnpqrstvwxz2456789"
# Order matters: timestamps and UUIDs contain digits and dashes the later patterns would eat.
_VOLATILE_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (
        re.compile(r"\b\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:[Zz]|[+-]\d{2}:?\d{2})?"),
        "<time>",
    ),
    (re.compile(r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b"), "<uuid>"),
    (re.compile(r"\b(?:\d{1,3}\.){3}\d{1,3}(?::\d{1,5})?\b"), "<ip>"),
    # Deployment pods: <deployment>-<pod-template-hash>-<random>. Kubernetes draws both from
    # its vowel-free "safe" alphabet, which keeps words like "increase-memory-limit" intact.
    (re.compile(rf"\b[a-z0-9](?:[a-z0-9.-]*[a-z0-9])?-[{_SAFE}]{{6,10}}-[{_SAFE}]{{5}}\b"), "<pod>"),
    (re.compile(r"\b[0-9a-f]{12,}\b"), "<hex>"),
)
_WHITESPACE = re.compile(r"\s+")


# An identifier is replaced where it stands as a whole token, not as part of a longer name:
# not preceded by a name character nor a "."; not followed by a name character (a trailing
# "." may end a sentence). That is the regex (?<![A-Za-z0-9_.-])IDENT(?![A-Za-z0-9_-]),
# matched here with str.find: the identifiers differ on every record, so compiling that
# regex per record cost more than the rest of the text building (docs/PERFORMANCE.md).
_NAME_CHARACTERS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")
_NOT_BEFORE = _NAME_CHARACTERS | {"."}


def _replace_whole_token(text: str, identifier: str, placeholder: str) -> str:
    """`text` with each whole-token occurrence of `identifier` replaced, left to right."""
    start = text.find(identifier)
    if start < 0:
        return text
    parts: list[str] = []
    done = 0
    while start >= 0:
        end = start + len(identifier)
        if (start == 0 or text[start - 1] not in _NOT_BEFORE) and (
            end == len(text) or text[end] not in _NAME_CHARACTERS
        ):
            parts += (text[done:start], placeholder)
            done = end
            start = text.find(identifier, end)
        else:
            start = text.find(identifier, start + 1)
    parts.append(text[done:])
    return "".join(parts)


def _identifiers(data: Validated) -> list[tuple[str, str]]:
    """The record's own identifiers, longest first so `payments-api` wins over `payments`."""
    candidates = [(data.get(field), placeholder) for field, placeholder in _IDENTIFIER_FIELDS]
    labels = data.get("labels")
    if isinstance(labels, Mapping):
        candidates += [(labels.get(key), "<app>") for key in _NAME_LABELS]
    found: dict[str, str] = {}
    for value, placeholder in candidates:
        if isinstance(value, str) and len(value) >= _MIN_IDENTIFIER_LENGTH:
            found.setdefault(value, placeholder)
    return sorted(found.items(), key=lambda item: (-len(item[0]), item[0]))


def normalise_free_text(text: str, *, identifiers: list[tuple[str, str]]) -> str:
    """`text` without the record's identifiers and volatile tokens, on one line."""
    for identifier, placeholder in identifiers:
        text = _replace_whole_token(text, identifier, placeholder)
    for pattern, placeholder in _VOLATILE_PATTERNS:
        text = pattern.sub(placeholder, text)
    return _WHITESPACE.sub(" ", text).strip()


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


def _free(data: Validated, field: str) -> str | None:
    value = data.get(field)
    if not isinstance(value, str):
        return None
    return normalise_free_text(value, identifiers=_identifiers(data))


def remediation_text(data: Validated) -> str:
    return _join(
        [
            ("audit", "remediation request"),
            # The alert or event reason (KubePodOOMKilled, BackOff): what fired, not where.
            ("signal", f"{data['signal_type']} {data['signal_name']}"),
            ("target kind", data["target_type"]),
            ("environment", data.get("environment")),
            ("priority", data.get("priority")),
            ("phase", data["phase"]),
            ("reason", _free(data, "reason")),
            ("message", _free(data, "message")),
        ]
    )


def aianalysis_text(data: Validated) -> str:
    return _join(
        [
            ("audit", "ai analysis"),
            ("signal type", data.get("signal_type")),
            ("root cause", _free(data, "root_cause")),
            ("recommended action", _free(data, "recommended_action")),
            ("requires approval", data.get("requires_approval")),
            ("phase", data["phase"]),
            ("message", _free(data, "message")),
        ]
    )


def workflow_text(data: Validated) -> str:
    # Step names come from the workflow definition ("increase-memory"), so they are semantic.
    steps = ", ".join(f"{step['name']} {step['phase']}" for step in data.get("step_statuses", []))
    return _join(
        [
            ("audit", "workflow execution"),
            ("workflow", data["workflow_name"]),
            ("auto approved", data.get("is_auto_approved")),
            ("requires approval", data.get("requires_approval")),
            ("steps", steps),
            ("phase", data["phase"]),
            ("message", _free(data, "message")),
        ]
    )


def execution_text(data: Validated) -> str:
    identifiers = _identifiers(data)
    warnings = [normalise_free_text(w, identifiers=identifiers) for w in data.get("validation_warnings", [])]
    return _join(
        [
            ("audit", "kubernetes execution"),
            ("action", data["action_type"]),
            ("target kind", data.get("target_type")),
            ("dry run", data.get("enable_dry_run")),
            ("result", _free(data, "action_result")),
            ("validation warnings", "; ".join(warnings)),
            ("rolled back", data.get("is_rolled_back")),
            ("phase", data["phase"]),
            ("message", _free(data, "message")),
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


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def payload_as_data(payload: Mapping[str, Any]) -> dict[str, Any]:
    """A stored (camelCase) payload as the snake_case mapping the builders take.

    The serializers keep every string, boolean and list exactly as sent, so this gives the
    builders the same values as validated_data did at write time, without re-running
    validation (whose rules may have tightened since the record was stored).
    """
    data = {_snake(key): value for key, value in payload.items()}
    steps = data.get("step_statuses")
    if isinstance(steps, list):
        data["step_statuses"] = [
            {_snake(key): value for key, value in step.items()} for step in steps if isinstance(step, Mapping)
        ]
    return data
