"""A flood of invented tokens costs the TokenReview API at most the review budget.

Tokens that are not JWTs are refused without a review; beyond the per-process budget (in
flight, per second) an uncached token gets 503 + Retry-After: 1; a cached verdict needs no
budget, so known writers keep writing through the flood.
"""

from __future__ import annotations

import base64
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from audit.models import AuditKind
from kubernaut_storage.auth.authentication import set_reviewer
from kubernaut_storage.auth.tokenreview import TokenReviewConfig, TokenReviewer, TokenReviewThrottled
from kubernaut_storage.auth.tokenreview_limits import ReviewBudget, well_formed_jwt
from testutils.factories import VALID_BODIES, endpoint
from testutils.tokenreview_server import FakeTokenReviewServer, jwt_shaped

OWN_TOKEN = "storage-own-sa-token"
AI_ACCOUNT = "system:serviceaccount:kubernaut-system:aianalysis-controller"
AI_TOKEN = jwt_shaped("ai-controller")
PER_SECOND = 5


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _token(header: bytes, rest: str = ".e30.c2ln") -> str:
    return _b64(header) + rest


@pytest.mark.parametrize(
    ("token", "well_formed"),
    [
        (jwt_shaped("x"), True),
        (_token(b'{"alg":"ES256","kid":"k"}'), True),
        ("abcdef.0123456789abcdef", False),  # a bootstrap token: two segments
        ("a.b.c", False),  # the header is not JSON
        (_token(b'{"typ":"JWT"}'), False),  # no alg
        (_token(b'{"alg":""}'), False),
        (_token(b"[1]"), False),
        (_token(b'{"alg":"RS256"}', ".e30."), False),  # unsigned
        (_token(b'{"alg":"RS256"}', ".e3+0.c2ln"), False),  # not base64url
        (_token(b"\xff\xfe"), False),  # not UTF-8
    ],
)
def test_well_formed_jwt(token, well_formed):
    assert well_formed_jwt(token) is well_formed


def test_the_budget_refills_at_its_rate_and_bounds_what_is_in_flight():
    now = [0.0]
    budget = ReviewBudget(max_concurrent=2, max_per_second=2, clock=lambda: now[0])
    assert [budget.acquire(), budget.acquire(), budget.acquire()] == [True, True, False]  # 2 in flight
    budget.release()
    budget.release()
    assert budget.acquire() is False  # slots free, bucket empty
    now[0] += 0.5
    assert budget.acquire() is True  # one call's worth refilled
    budget.release()
    now[0] += 100
    assert [budget.acquire(), budget.acquire()] == [True, True]  # capped at one second's worth
    budget.release()
    budget.release()
    assert budget.acquire() is False


@pytest.fixture
def apiserver(settings):
    with FakeTokenReviewServer(caller_token=OWN_TOKEN) as server:
        server.tokens[AI_TOKEN] = (AI_ACCOUNT, ["system:serviceaccounts"], [])
        settings.AUTH_MODE = "tokenreview"
        settings.AUDIT_WRITERS = {**settings.AUDIT_WRITERS, "aianalysis": [AI_ACCOUNT]}
        settings.KUBERNETES_TOKENREVIEW = {
            "api_url": server.url,
            "bearer_token": OWN_TOKEN,
            "max_per_second": PER_SECOND,
        }
        yield server
    set_reviewer(None)


def _post(api, token):
    return api.post(
        endpoint(AuditKind.AI_ANALYSIS),
        data=VALID_BODIES[AuditKind.AI_ANALYSIS](),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {token}",
    )


def test_tokens_that_are_not_jwts_are_never_reviewed(api, apiserver, db):
    for token in ("abcdef.0123456789abcdef", "opaque-token", "a.b.c"):
        answer = _post(api, token)
        assert answer.status_code == 401
        assert 'error="invalid_token"' in answer["WWW-Authenticate"]
    assert apiserver.request_count == 0


def test_a_flood_of_invented_tokens_costs_at_most_the_budget(api, apiserver, db):
    assert _post(api, AI_TOKEN).status_code == 201  # reviewed once, then cached
    statuses = [_post(api, jwt_shaped(f"invented-{n}")).status_code for n in range(40)]
    # The whole flood takes well under a second: the bucket's burst less the good token's
    # review, plus what refills meanwhile.
    assert 1 + statuses.count(401) == apiserver.request_count <= PER_SECOND + 2
    assert statuses.count(503) >= 40 - PER_SECOND - 1
    throttled = _post(api, jwt_shaped("one-more"))
    assert (throttled.status_code, throttled["Retry-After"]) == (503, "1")
    assert _post(api, AI_TOKEN).status_code == 201  # the cached writer is unaffected


def test_reviews_in_flight_are_bounded(apiserver):
    apiserver.delay_s = 0.5
    config = TokenReviewConfig(api_url=apiserver.url, ca_file=None, bearer_token=OWN_TOKEN, max_concurrent=3)
    reviewer = TokenReviewer(config)
    start = threading.Barrier(12)

    def review(n: int) -> str:
        start.wait()
        try:
            return "reviewed" if not reviewer.review(jwt_shaped(f"slow-{n}")).authenticated else "accepted"
        except TokenReviewThrottled:
            return "throttled"

    with ThreadPoolExecutor(12) as pool:
        outcomes = list(pool.map(review, range(12)))
    assert (outcomes.count("reviewed"), outcomes.count("throttled")) == (3, 9)
    assert apiserver.request_count == 3


def test_the_403_names_the_kind_by_its_value(api, apiserver, db):
    answer = api.post(
        endpoint(AuditKind.REMEDIATION),
        data=VALID_BODIES[AuditKind.REMEDIATION](),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {AI_TOKEN}",
    )
    assert answer.status_code == 403
    assert "write 'remediation' audit events" in answer.json()["detail"]
