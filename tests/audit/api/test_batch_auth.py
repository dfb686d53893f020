"""AUTH_MODE=tokenreview on the batch endpoint: the caller must be allowed every kind it sends."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from audit.models import AUDIT_MODELS, AuditKind
from testutils.audit_rows import assert_problem, table_counts
from testutils.batches import batch_of, post_batch
from testutils.tokenreview_server import FakeTokenReviewServer

pytestmark = pytest.mark.django_db

OWN_TOKEN = "storage-own-sa-token"
CONTROLLER = "system:serviceaccount:kubernaut-system:workflow-controller"
CONTROLLER_TOKEN = "eyJhbGciOiJSUzI1NiJ9.workflow-controller.c2lnbmF0dXJl"


@pytest.fixture
def apiserver(settings) -> Iterator[FakeTokenReviewServer]:
    with FakeTokenReviewServer(caller_token=OWN_TOKEN) as server:
        server.tokens[CONTROLLER_TOKEN] = (CONTROLLER, ["system:serviceaccounts"], [])
        settings.AUTH_MODE = "tokenreview"
        settings.KUBERNETES_TOKENREVIEW = {"api_url": server.url, "bearer_token": OWN_TOKEN}
        settings.AUDIT_WRITERS = {"workflow": [CONTROLLER], "execution": [CONTROLLER], "remediation": ["someone"]}
        yield server


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_an_account_allowed_every_kind_of_the_batch_writes_it_as_the_actor(api, apiserver):
    response = post_batch(api, batch_of([AuditKind.WORKFLOW, AuditKind.EXECUTION]), **bearer(CONTROLLER_TOKEN))

    assert response.status_code == 201, response.content
    workflow, execution = response.json()["results"]
    assert AUDIT_MODELS[AuditKind.WORKFLOW].objects.get(id=workflow["id"]).actor == CONTROLLER
    assert AUDIT_MODELS[AuditKind.EXECUTION].objects.get(id=execution["id"]).actor == CONTROLLER


def test_one_kind_not_allowed_is_403_naming_those_records_and_nothing_is_stored(api, apiserver):
    kinds = [AuditKind.WORKFLOW, AuditKind.REMEDIATION, AuditKind.EXECUTION, AuditKind.AI_ANALYSIS]
    before = table_counts()

    problem = assert_problem(post_batch(api, batch_of(kinds), **bearer(CONTROLLER_TOKEN)), 403)

    assert CONTROLLER in problem["detail"]
    assert "records[1] (remediation)" in problem["detail"]
    assert "records[3] (aianalysis)" in problem["detail"]
    assert "records[0]" not in problem["detail"]
    assert "records[2]" not in problem["detail"]
    assert table_counts() == before


def test_authorization_is_decided_before_the_records_are_validated(api, apiserver):
    body = batch_of([AuditKind.REMEDIATION])
    body["records"][0]["record"]["namespace"] = "Bad_NS"
    assert_problem(post_batch(api, body, **bearer(CONTROLLER_TOKEN)), 403)


def test_without_a_token_the_batch_is_401(api, apiserver):
    before = table_counts()
    problem = assert_problem(post_batch(api, batch_of([AuditKind.WORKFLOW])), 401)
    assert problem["type"].endswith("/not-authenticated")
    assert table_counts() == before
    assert apiserver.request_count == 0
