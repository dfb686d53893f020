"""AUTH_MODE=tokenreview through the real audit endpoints and a real TokenReview HTTP server."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest
from prometheus_client import REGISTRY

from audit.models import AUDIT_MODELS, AuditKind
from kubernaut_storage.observability.logs import JsonFormatter
from testutils.audit_rows import assert_problem, post_audit, table_counts
from testutils.factories import VALID_BODIES
from testutils.tokenreview_server import FakeTokenReviewServer

pytestmark = pytest.mark.django_db

OWN_TOKEN = "storage-own-sa-token"
AI_ACCOUNT = "system:serviceaccount:kubernaut-system:aianalysis-controller"
AI_TOKEN = "eyJhbGciOiJSUzI1NiJ9.ai-controller-token.c2lnbmF0dXJl"
UNKNOWN_TOKEN = "eyJhbGciOiJSUzI1NiJ9.not-a-real-token.c2lnbmF0dXJl"
NEVER_SEEN_TOKEN = "eyJhbGciOiJSUzI1NiJ9.never-seen-before.c2lnbmF0dXJl"


@pytest.fixture
def apiserver(settings) -> Iterator[FakeTokenReviewServer]:
    with FakeTokenReviewServer(caller_token=OWN_TOKEN) as server:
        server.tokens[AI_TOKEN] = (AI_ACCOUNT, ["system:serviceaccounts"], [])
        settings.AUTH_MODE = "tokenreview"
        # Changing this setting also drops the process-wide reviewer and its cache.
        settings.KUBERNETES_TOKENREVIEW = {"api_url": server.url, "bearer_token": OWN_TOKEN}
        settings.AUDIT_WRITERS = {"aianalysis": [AI_ACCOUNT], "remediation": ["system:serviceaccount:x:gateway"]}
        yield server


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def counter(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_allowed_account_writes_and_is_stored_as_the_actor(api, apiserver):
    response = post_audit(api, AuditKind.AI_ANALYSIS, VALID_BODIES[AuditKind.AI_ANALYSIS](), **bearer(AI_TOKEN))

    assert response.status_code == 201, response.content
    record = AUDIT_MODELS[AuditKind.AI_ANALYSIS].objects.get(id=response.json()["id"])
    assert record.actor == AI_ACCOUNT
    # The API server was asked about the caller's token, with our own credentials.
    assert apiserver.bodies[-1]["spec"]["token"] == AI_TOKEN


def test_missing_token_is_401_and_writes_nothing(api, apiserver):
    before = table_counts()
    problem = assert_problem(post_audit(api, AuditKind.AI_ANALYSIS, VALID_BODIES[AuditKind.AI_ANALYSIS]()), 401)
    assert problem["type"].endswith("/not-authenticated")
    assert table_counts() == before
    assert apiserver.request_count == 0


def test_rejected_token_is_401_with_invalid_token_challenge(api, apiserver):
    before = table_counts()
    response = post_audit(api, AuditKind.AI_ANALYSIS, VALID_BODIES[AuditKind.AI_ANALYSIS](), **bearer(UNKNOWN_TOKEN))

    assert_problem(response, 401)
    assert 'error="invalid_token"' in response["WWW-Authenticate"]
    assert table_counts() == before


def test_account_not_on_the_endpoint_allow_list_is_403(api, apiserver):
    before = table_counts()
    response = post_audit(api, AuditKind.REMEDIATION, VALID_BODIES[AuditKind.REMEDIATION](), **bearer(AI_TOKEN))

    problem = assert_problem(response, 403)
    assert AI_ACCOUNT in problem["detail"]
    assert table_counts() == before


def test_unreachable_tokenreview_api_is_503_with_retry_after(api, apiserver):
    apiserver.stop()
    before = table_counts()
    response = post_audit(api, AuditKind.AI_ANALYSIS, VALID_BODIES[AuditKind.AI_ANALYSIS](), **bearer(AI_TOKEN))

    problem = assert_problem(response, 503)
    assert problem["type"].endswith("/auth-backend-unavailable")
    assert int(response["Retry-After"]) > 0
    assert table_counts() == before


def test_accepted_token_is_cached_between_requests(api, apiserver):
    for _ in range(3):
        body = VALID_BODIES[AuditKind.AI_ANALYSIS]()
        assert post_audit(api, AuditKind.AI_ANALYSIS, body, **bearer(AI_TOKEN)).status_code == 201
    assert apiserver.request_count == 1


def test_auth_failures_and_write_outcomes_are_counted_by_reason(api, apiserver):
    failures = "kubernaut_auth_failures_total"
    writes = "kubernaut_audit_writes_total"
    reasons = ("missing", "rejected", "forbidden", "unavailable")
    before = {reason: counter(failures, reason=reason) for reason in reasons}
    rejected_before = counter(writes, kind="aianalysis", outcome="rejected")
    unavailable_before = counter(writes, kind="aianalysis", outcome="unavailable")

    post_audit(api, AuditKind.AI_ANALYSIS, VALID_BODIES[AuditKind.AI_ANALYSIS]())
    post_audit(api, AuditKind.AI_ANALYSIS, VALID_BODIES[AuditKind.AI_ANALYSIS](), **bearer(UNKNOWN_TOKEN))
    post_audit(api, AuditKind.REMEDIATION, VALID_BODIES[AuditKind.REMEDIATION](), **bearer(AI_TOKEN))
    apiserver.stop()
    post_audit(
        api,
        AuditKind.AI_ANALYSIS,
        VALID_BODIES[AuditKind.AI_ANALYSIS](),
        **bearer("eyJhbGciOiJSUzI1NiJ9.never-seen-before.c2lnbmF0dXJl"),
    )

    assert {reason: counter(failures, reason=reason) - before[reason] for reason in reasons} == dict.fromkeys(
        reasons, 1.0
    )
    assert counter(writes, kind="aianalysis", outcome="rejected") - rejected_before == 2
    assert counter(writes, kind="aianalysis", outcome="unavailable") - unavailable_before == 1


def test_bearer_tokens_never_reach_the_logs(api, apiserver, caplog):
    # Everything every logger emits, as the JSON lines the service would print.
    output = io.StringIO()
    handler = logging.StreamHandler(output)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.addHandler(handler)
    caplog.set_level(logging.DEBUG)
    try:
        body = VALID_BODIES[AuditKind.AI_ANALYSIS]
        post_audit(api, AuditKind.AI_ANALYSIS, body(), **bearer(AI_TOKEN))  # accepted
        post_audit(api, AuditKind.AI_ANALYSIS, body(), **bearer(UNKNOWN_TOKEN))  # rejected
        post_audit(api, AuditKind.REMEDIATION, VALID_BODIES[AuditKind.REMEDIATION](), **bearer(AI_TOKEN))  # 403
        post_audit(api, AuditKind.AI_ANALYSIS, body(), Authorization=f"Bearer {AI_TOKEN} extra")  # malformed
        apiserver.stop()
        post_audit(api, AuditKind.AI_ANALYSIS, body(), **bearer("token-while-down"))  # 503
    finally:
        root.removeHandler(handler)

    logged = output.getvalue()
    assert "kubernaut_storage.access" in logged  # the capture did see the request lines
    for secret in (AI_TOKEN, UNKNOWN_TOKEN, "token-while-down", OWN_TOKEN):
        assert secret not in logged
        assert secret not in caplog.text
        assert all(secret not in repr(record.__dict__) for record in caplog.records)
