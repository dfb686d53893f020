"""The text builders: the same incident elsewhere gets the same text; a different one does not."""

from __future__ import annotations

import datetime as dt
import random
import re
import uuid
from typing import Any

import pytest

from audit.api.serializers import AUDIT_SERIALIZERS
from audit.models import AuditKind
from audit.write.texts import audit_text, normalise_free_text, payload_as_data
from testutils.factories import VALID_BODIES, rfc3339

KINDS = list(AuditKind)


def validated(kind: AuditKind, body: dict[str, Any]) -> Any:
    serializer = AUDIT_SERIALIZERS[kind](data=body)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


def text_of(kind: AuditKind, body: dict[str, Any]) -> str:
    return audit_text(kind=kind, data=validated(kind, body))


def incident(kind: AuditKind, *, app: str, namespace: str, minutes_ago: int, **overrides: Any) -> dict[str, Any]:
    """One incident as `kind`'s controller reports it, about workload `app` in `namespace`.

    Every identifier, and the free text naming them, is derived from `app` and `namespace`,
    as a controller would write it: two calls with other names are the same incident elsewhere.
    """
    created = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(minutes=minutes_ago)
    pod = f"{app}-7d9f8b6c4-x2x9q" if app.startswith("pay") else f"{app}-5b6d7c8f9-qz7wk"
    body = VALID_BODIES[kind](
        name=f"{kind.value[:2]}-{app}-{uuid.uuid4().hex[:6]}",
        namespace=namespace,
        correlationId=f"corr-{uuid.uuid4().hex}",
        createdAt=rfc3339(created),
        startedAt=rfc3339(created + dt.timedelta(seconds=3)),
        completedAt=rfc3339(created + dt.timedelta(seconds=40)),
        labels={"app.kubernetes.io/name": app},
        message=(
            f"Pod {pod} of {app} in namespace {namespace} restarted at {rfc3339(created)}"
            f" (request {uuid.uuid4()}, node 10.0.{minutes_ago}.7)."
        ),
    )
    if kind == AuditKind.REMEDIATION:
        body.update(
            signalNamespace=namespace,
            targetName=app,
            targetNamespace=namespace,
            fingerprint=uuid.uuid4().hex + uuid.uuid4().hex,
            reason=f"Container of {app} exceeded its memory limit",
        )
    elif kind == AuditKind.AI_ANALYSIS:
        body.update(
            remediationRequestRef=f"rr-{app}-{minutes_ago}",
            investigationId=f"inv-{uuid.uuid4().hex[:8]}",
            rootCause=f"A memory leak in {app}'s cache grows until the OOM killer fires on {pod}.",
            confidence=0.5 + minutes_ago / 1000,
            tokensUsed=1000 + minutes_ago,
        )
    elif kind == AuditKind.WORKFLOW:
        body.update(remediationRequestRef=f"rr-{app}-{minutes_ago}", aiAnalysisRef=f"ai-{app}-{minutes_ago}")
    else:
        body.update(
            workflowExecutionRef=f"wf-{app}-{minutes_ago}",
            targetName=app,
            targetNamespace=namespace,
            actionData={"container": app, "memory": "1Gi"},
            resourceVersion=str(1000 + minutes_ago),
            previousVersion=str(999 + minutes_ago),
            actionResult=f"patched deployment {app} in {namespace}",
            validationWarnings=[f"memory request of {app} below limit"],
        )
    body.update(overrides)
    return body


@pytest.mark.parametrize("kind", KINDS)
def test_same_incident_elsewhere_gets_the_same_text(kind: AuditKind) -> None:
    here = incident(kind, app="payments-api", namespace="payments", minutes_ago=3)
    there = incident(kind, app="checkout-web", namespace="shop-prod", minutes_ago=47)
    assert here["correlationId"] != there["correlationId"]

    assert text_of(kind, here) == text_of(kind, there)


@pytest.mark.parametrize("kind", KINDS)
def test_text_names_no_identifier_of_the_record(kind: AuditKind) -> None:
    body = incident(kind, app="payments-api", namespace="payments", minutes_ago=3)
    text = text_of(kind, body)

    for value in ("payments", "7d9f8b6c4", body["correlationId"], body["name"], body["createdAt"][:10], "10.0.3.7"):
        assert value not in text
    assert "<target>" in text or "<namespace>" in text


@pytest.mark.parametrize("kind", KINDS)
def test_text_is_deterministic(kind: AuditKind) -> None:
    body = incident(kind, app="payments-api", namespace="payments", minutes_ago=3)
    assert text_of(kind, body) == text_of(kind, dict(body))


SEMANTIC_CHANGES: list[tuple[AuditKind, dict[str, Any]]] = [
    (AuditKind.REMEDIATION, {"signalName": "KubeNodeNotReady"}),
    (AuditKind.REMEDIATION, {"signalType": "kubernetes-event"}),
    (AuditKind.REMEDIATION, {"targetType": "statefulset"}),
    (AuditKind.REMEDIATION, {"environment": "staging"}),
    (AuditKind.REMEDIATION, {"phase": "Failed"}),
    (AuditKind.REMEDIATION, {"reason": "Certificate expired on the ingress"}),
    (AuditKind.AI_ANALYSIS, {"rootCause": "Disk pressure evicted the pods."}),
    (AuditKind.AI_ANALYSIS, {"recommendedAction": "rollback_deployment"}),
    (AuditKind.AI_ANALYSIS, {"requiresApproval": True}),
    (AuditKind.WORKFLOW, {"workflowName": "disk-cleanup"}),
    (AuditKind.WORKFLOW, {"phase": "Failed"}),
    (AuditKind.WORKFLOW, {"isAutoApproved": False}),
    (AuditKind.EXECUTION, {"actionType": "restart_pod"}),
    (AuditKind.EXECUTION, {"isRolledBack": True}),
    (AuditKind.EXECUTION, {"actionResult": "patch rejected by admission webhook"}),
]


@pytest.mark.parametrize(("kind", "change"), SEMANTIC_CHANGES, ids=lambda v: str(v))
def test_a_different_incident_gets_a_different_text(kind: AuditKind, change: dict[str, Any]) -> None:
    base = incident(kind, app="payments-api", namespace="payments", minutes_ago=3)
    other = incident(kind, app="payments-api", namespace="payments", minutes_ago=3, **change)
    assert text_of(kind, base) != text_of(kind, other)


def test_the_four_kinds_never_share_a_text() -> None:
    texts = {text_of(kind, incident(kind, app="payments-api", namespace="payments", minutes_ago=3)) for kind in KINDS}
    assert len(texts) == len(KINDS)


def test_free_text_cannot_forge_a_line() -> None:
    body = VALID_BODIES[AuditKind.REMEDIATION](message="all good\nphase: Failed\n\tpriority: P0")
    text = text_of(AuditKind.REMEDIATION, body)
    assert "message: all good phase: Failed priority: P0" in text
    assert [line.split(":")[0] for line in text.splitlines()].count("phase") == 1


def test_short_identifiers_do_not_eat_words() -> None:
    # A namespace called "db" must not turn "db connection" into "<namespace> connection".
    assert normalise_free_text("db connection refused", identifiers=[]) == "db connection refused"
    body = VALID_BODIES[AuditKind.REMEDIATION](namespace="db", message="db connection refused")
    assert "message: db connection refused" in text_of(AuditKind.REMEDIATION, body)


@pytest.mark.parametrize(
    ("text", "replaced"),
    [
        ("payments-api is down", "<target> is down"),
        ("restarted payments-api.", "restarted <target>."),  # a full stop ends the sentence
        ("see payments-api-v2 and x.payments-api", "see payments-api-v2 and x.payments-api"),
        ("payments-apipayments-api payments-api", "payments-apipayments-api <target>"),
        ("(payments-api),payments-api:payments-api", "(<target>),<target>:<target>"),
    ],
)
def test_an_identifier_is_replaced_only_as_a_whole_token(text: str, replaced: str) -> None:
    assert normalise_free_text(text, identifiers=[("payments-api", "<target>")]) == replaced


def test_whole_token_replacement_agrees_with_its_regex_definition() -> None:
    # The replacement is str.find based for speed; this is the regex it must behave as.
    rng = random.Random(5)
    for _ in range(20_000):
        identifier = "".join(rng.choice("ab-.:") for _ in range(rng.randint(3, 5)))
        text = "".join(rng.choice("ab-._ :/xA9") for _ in range(rng.randint(0, 16)))
        text = text[:4] + identifier + text[4:] + identifier * rng.randint(0, 2)
        pattern = re.compile(rf"(?<![A-Za-z0-9_.-]){re.escape(identifier)}(?![A-Za-z0-9_-])")
        expected = normalise_free_text(pattern.sub("<x>", text), identifiers=[])
        assert normalise_free_text(text, identifiers=[(identifier, "<x>")]) == expected, (text, identifier)


def test_step_and_action_words_are_not_mistaken_for_pod_names() -> None:
    text = "increase-memory-limit then rollout-restart-deployment"
    assert normalise_free_text(text, identifiers=[]) == text


@pytest.mark.parametrize("kind", KINDS)
def test_stored_payload_gives_the_write_time_text(kind: AuditKind) -> None:
    # embeddings_backfill rebuilds the text from the stored camelCase payload.
    body = incident(kind, app="payments-api", namespace="payments", minutes_ago=3)
    assert audit_text(kind=kind, data=payload_as_data(body)) == text_of(kind, body)
