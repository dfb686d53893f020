"""AUTHZ_MODE=sar: after TokenReview, a SubjectAccessReview (verb create on the configured
Service) decides who may post audit events, as upstream Kubernaut's Data Storage asks; verdicts
are cached per process; an API server that cannot answer is 503, never 403."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from audit.models import AuditEvent
from kubernaut_storage.auth.access_review import AccessReviewer, AccessTarget
from kubernaut_storage.auth.authentication import get_reviewer
from testutils.audit_rows import assert_problem
from testutils.events import event_batch, post_events
from testutils.tokenreview_server import FakeTokenReviewServer

pytestmark = pytest.mark.django_db

OWN_TOKEN = "storage-own-sa-token"
GATEWAY = "system:serviceaccount:kubernaut-system:gateway"
GATEWAY_TOKEN = "eyJhbGciOiJSUzI1NiJ9.gateway-token.c2lnbmF0dXJl"
OTHER = "system:serviceaccount:default:someone"
OTHER_TOKEN = "eyJhbGciOiJSUzI1NiJ9.someone-token.c2lnbmF0dXJl"
GRANT = (GATEWAY, "create", "kubernaut-system", "services/data-storage-service")


@pytest.fixture
def apiserver(settings: Any) -> Iterator[FakeTokenReviewServer]:
    with FakeTokenReviewServer(caller_token=OWN_TOKEN) as server:
        server.tokens[GATEWAY_TOKEN] = (GATEWAY, ["system:serviceaccounts"], [])
        server.tokens[OTHER_TOKEN] = (OTHER, ["system:serviceaccounts"], [])
        server.access.add(GRANT)
        settings.AUTH_MODE = "tokenreview"
        settings.AUTHZ_MODE = "sar"
        settings.KUBERNETES_TOKENREVIEW = {"api_url": server.url, "bearer_token": OWN_TOKEN}
        # The allow-list would refuse both: only the review decides.
        settings.AUDIT_WRITERS = {**settings.AUDIT_WRITERS, "events": []}
        yield server


def _post(api: Any, token: str) -> Any:
    return post_events(api, event_batch(["gateway.signal.received"] * 2), Authorization=f"Bearer {token}")


def test_an_account_rbac_allows_to_create_writes_and_is_the_actor(api, apiserver):
    response = _post(api, GATEWAY_TOKEN)

    assert response.status_code == 201, response.content
    assert {row.actor for row in AuditEvent.objects.filter(event_id__in=response.json()["event_ids"])} == {GATEWAY}
    review = apiserver.access_reviews[-1]
    assert review["kind"] == "SubjectAccessReview"
    assert review["spec"]["user"] == GATEWAY
    assert review["spec"]["resourceAttributes"] == {
        "namespace": "kubernaut-system",
        "verb": "create",
        "group": "",
        "resource": "services",
        "name": "data-storage-service",
    }


def test_an_account_rbac_does_not_allow_is_403_and_nothing_is_stored(api, apiserver):
    before = AuditEvent.objects.count()
    problem = assert_problem(_post(api, OTHER_TOKEN), 403)
    assert problem["type"] == "https://kubernaut.ai/problems/forbidden"
    assert AuditEvent.objects.count() == before


def test_verdicts_are_cached_per_process(api, apiserver):
    assert _post(api, GATEWAY_TOKEN).status_code == 201
    assert _post(api, GATEWAY_TOKEN).status_code == 201
    assert len(apiserver.access_reviews) == 1


def test_an_api_server_that_cannot_answer_is_503_not_403(api, apiserver, settings):
    settings.AUTHZ_SAR_CACHE_SECONDS = 0  # every request asks: the token's verdict stays cached
    assert _post(api, GATEWAY_TOKEN).status_code == 201
    reviews = len(apiserver.access_reviews)
    apiserver.fail_with_status = 500
    response = _post(api, GATEWAY_TOKEN)
    assert len(apiserver.access_reviews) == reviews + 1  # the access review, not the token's, failed
    problem = assert_problem(response, 503)
    assert problem["type"] == "https://kubernaut.ai/problems/service-unavailable"
    assert int(response["Retry-After"]) >= 1


def test_the_cache_expires_and_is_bounded(apiserver):
    now = [0.0]
    reviewer = AccessReviewer(
        get_reviewer(),
        target=AccessTarget.parse(namespace="kubernaut-system", resource="services/data-storage-service"),
        ttl_s=30,
        clock=lambda: now[0],
    )
    assert reviewer.allowed(username=GATEWAY, verb="create")
    assert not reviewer.allowed(username=GATEWAY, verb="get")
    apiserver.access.clear()
    now[0] = 29
    assert reviewer.allowed(username=GATEWAY, verb="create")  # cached
    now[0] = 31
    assert not reviewer.allowed(username=GATEWAY, verb="create")  # asked again: RBAC revoked
    with pytest.raises(ValueError, match="resource/name"):
        AccessTarget.parse(namespace="x", resource="services")
