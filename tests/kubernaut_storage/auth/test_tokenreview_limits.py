"""A flood of invented tokens costs the TokenReview API at most the review budget, and keeps no
writer out.

Tokens that are not JWTs are refused without a review; beyond the per-process budget (in
flight, per second) an uncached token gets 503 + Retry-After: 1. The budget is shared evenly
among the client addresses asking, so a flooding address spends only its own share and a new
writer's first review starts at once; a cached verdict needs no budget and is renewed before it
expires, so known writers keep writing through the flood.
"""

from __future__ import annotations

import base64
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from audit.models import AuditKind
from kubernaut_storage.auth.authentication import set_reviewer
from kubernaut_storage.auth.tokenreview import (
    RENEW_AFTER_FRACTION,
    TokenReviewConfig,
    TokenReviewer,
    TokenReviewThrottled,
)
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
    assert [budget.acquire("a"), budget.acquire("a"), budget.acquire("a")] == [True, True, False]  # 2 in flight
    budget.release("a")
    budget.release("a")
    assert budget.acquire("a") is False  # slots free, bucket empty
    now[0] += 0.5
    assert budget.acquire("a") is True  # one call's worth refilled
    budget.release("a")
    now[0] += 100
    assert [budget.acquire("a"), budget.acquire("a")] == [True, True]  # capped at one second's worth
    budget.release("a")
    budget.release("a")
    assert budget.acquire("a") is False


def test_a_new_client_is_reviewed_at_once_while_another_floods():
    now = [0.0]
    budget = ReviewBudget(max_concurrent=8, max_per_second=10, clock=lambda: now[0])
    granted = 0
    for _ in range(200):  # one client asks every 5 ms for 1 s
        now[0] += 0.005
        if budget.acquire("flood"):
            granted += 1
            budget.release("flood")
    assert granted <= 10 + 10  # its first bucket, and what refilled in that second
    assert budget.acquire("writer") is True  # a new client starts with a bucket of its own
    budget.release("writer")


def test_the_rate_is_shared_evenly_among_the_clients_asking():
    now = [0.0]
    budget = ReviewBudget(max_concurrent=8, max_per_second=10, clock=lambda: now[0])
    granted = {"flood-1": 0, "flood-2": 0, "writer": 0}
    for tick in range(1000):  # 10 s; the writer asks once a second, the floods every 10 ms
        now[0] += 0.01
        askers = ["flood-1", "flood-2"] + (["writer"] if tick % 100 == 0 else [])
        for client in askers:
            if budget.acquire(client):
                granted[client] += 1
                budget.release(client)
    assert granted["writer"] == 10  # every time it asked
    assert sum(granted.values()) <= 10 * 10 + 10 + 2  # the rate, plus each client's first bucket
    assert abs(granted["flood-1"] - granted["flood-2"]) <= 2


def test_a_client_holds_at_most_its_share_of_the_calls_in_flight():
    budget = ReviewBudget(max_concurrent=4, max_per_second=100, clock=lambda: 0.0)
    assert [budget.acquire("flood") for _ in range(5)] == [True, True, True, True, False]
    assert budget.acquire("writer") is False  # all four in flight: the process's bound holds
    budget.release("flood")
    assert budget.acquire("flood") is False  # two clients asking now: two calls each
    assert budget.acquire("writer") is True


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


def _post(api, token, *, address="10.0.0.9"):
    return api.post(
        endpoint(AuditKind.AI_ANALYSIS),
        data=VALID_BODIES[AuditKind.AI_ANALYSIS](),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {token}",
        REMOTE_ADDR=address,
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


def test_a_flood_from_one_address_does_not_keep_a_new_writer_out(api, apiserver, db):
    flood = [_post(api, jwt_shaped(f"invented-{n}"), address="10.0.0.66").status_code for n in range(40)]
    assert flood.count(503) >= 40 - PER_SECOND - 1  # the flooding address is at its budget
    # The writer's pod has an address of its own: its first request is reviewed and accepted.
    assert _post(api, AI_TOKEN, address="10.0.0.7").status_code == 201


def test_a_writer_keeps_its_verdict_across_the_expiry(api, apiserver, settings, db):
    ttl = 4.0
    settings.KUBERNETES_TOKENREVIEW = {**settings.KUBERNETES_TOKENREVIEW, "accepted_ttl_s": ttl}
    now = [1000.0]
    set_reviewer(TokenReviewer(TokenReviewConfig.from_mapping(settings.KUBERNETES_TOKENREVIEW), clock=lambda: now[0]))
    assert _post(api, AI_TOKEN).status_code == 201  # reviewed: trusted for `ttl`
    now[0] += ttl * RENEW_AFTER_FRACTION + 0.1
    assert _post(api, AI_TOKEN).status_code == 201  # from the cache; a renewal starts meanwhile
    deadline = time.monotonic() + 5
    while apiserver.request_count < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert apiserver.request_count == 2
    apiserver.stop()  # past the first verdict's expiry no review can be had
    now[0] += ttl * (1 - RENEW_AFTER_FRACTION)
    assert _post(api, AI_TOKEN).status_code == 201  # the renewed verdict


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
