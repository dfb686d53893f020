"""Tests for kubernaut_storage.auth.tokenreview against a real (fake) API server.

Run without Django: ``pytest -p no:django tests/kubernaut_storage/auth/test_tokenreview.py``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from kubernaut_storage.auth.tokenreview import (
    NotInClusterError,
    TokenReviewConfig,
    TokenReviewer,
    TokenReviewUnavailable,
    token_fingerprint,
)
from testutils.tokenreview_server import (
    FakeTokenReviewServer,
    make_self_signed_cert,
)

CALLER = "reviewer-sa-token"
GOOD = "good.jwt.token"
USER = "system:serviceaccount:kubernaut-system:aianalysis-controller"
GROUPS = ("system:serviceaccounts", "system:serviceaccounts:kubernaut-system", "system:authenticated")


class FakeClock:
    """Manually advanced monotonic clock so TTL tests need no sleeping."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def api() -> Iterator[FakeTokenReviewServer]:
    server = FakeTokenReviewServer(caller_token=CALLER)
    server.tokens[GOOD] = (USER, GROUPS, ("kubernaut-storage",))
    with server:
        yield server


def make_reviewer(api: FakeTokenReviewServer, clock: FakeClock | None = None, **overrides: object) -> TokenReviewer:
    options: dict[str, object] = {
        "api_url": api.url,
        "ca_file": None,
        "bearer_token": CALLER,
        "timeout_s": 1.0,
    }
    options.update(overrides)
    config = TokenReviewConfig(**options)  # type: ignore[arg-type]
    return TokenReviewer(config, clock=clock or FakeClock())


def test_accepted_token_returns_identity(api: FakeTokenReviewServer) -> None:
    result = make_reviewer(api).review(GOOD)
    assert result.authenticated
    assert result.username == USER
    assert result.error is None
    assert api.request_count == 1
    # The request shape the real API server expects.
    (body,) = api.bodies
    assert body["apiVersion"] == "authentication.k8s.io/v1"
    assert body["kind"] == "TokenReview"
    assert body["spec"] == {"token": GOOD}  # no "audiences" key when none configured


def test_rejected_token(api: FakeTokenReviewServer) -> None:
    result = make_reviewer(api).review("forged-token")
    assert not result.authenticated
    assert result.username is None
    assert result.error == "invalid bearer token"


def test_audiences_are_sent_and_matching_token_accepted(api: FakeTokenReviewServer) -> None:
    result = make_reviewer(api, audiences=("kubernaut-storage", "other")).review(GOOD)
    assert result.authenticated
    assert result.audiences == ("kubernaut-storage",)
    assert api.bodies[0]["spec"]["audiences"] == ["kubernaut-storage", "other"]


def test_audience_mismatch_rejected_by_server(api: FakeTokenReviewServer) -> None:
    result = make_reviewer(api, audiences=("someone-else",)).review(GOOD)
    assert not result.authenticated


def test_audience_mismatch_rejected_client_side(api: FakeTokenReviewServer) -> None:
    # Server claims success but echoes audiences we did not ask for: we must
    # still reject, as the TokenReview contract requires.
    api.audiences_override = ["https://kubernetes.default.svc"]
    result = make_reviewer(api, audiences=("kubernaut-storage",)).review(GOOD)
    assert not result.authenticated
    assert result.error is not None
    assert "audience" in result.error
    # And a missing status.audiences is treated the same way.
    api.audiences_override = []
    assert not make_reviewer(api, audiences=("kubernaut-storage",)).review(GOOD).authenticated


def test_server_down_raises_unavailable(api: FakeTokenReviewServer) -> None:
    reviewer = make_reviewer(api)
    api.stop()
    with pytest.raises(TokenReviewUnavailable):
        reviewer.review(GOOD)
    # Failures are never cached: the next review asks again (and fails again) rather than
    # answering a remembered verdict.
    with pytest.raises(TokenReviewUnavailable):
        reviewer.review(GOOD)


@pytest.mark.parametrize("status", [500, 503, 429])
def test_server_error_raises_unavailable(api: FakeTokenReviewServer, status: int) -> None:
    api.fail_with_status = status
    reviewer = make_reviewer(api)
    with pytest.raises(TokenReviewUnavailable, match=str(status)):
        reviewer.review(GOOD)
    # Once the server recovers the next call goes through (nothing was cached).
    api.fail_with_status = None
    assert reviewer.review(GOOD).authenticated
    assert api.request_count == 2


def test_wrong_own_credentials_is_unavailable_not_rejected(api: FakeTokenReviewServer) -> None:
    # A 401 from the API server means *our* token is bad; the client's token
    # was never judged, so this must not become a 401 for the client.
    with pytest.raises(TokenReviewUnavailable, match="401"):
        make_reviewer(api, bearer_token="wrong").review(GOOD)


def test_timeout_raises_unavailable(api: FakeTokenReviewServer) -> None:
    api.delay_s = 0.5
    with pytest.raises(TokenReviewUnavailable):
        make_reviewer(api, timeout_s=0.1).review(GOOD)


def test_cache_hit_makes_no_request(api: FakeTokenReviewServer) -> None:
    reviewer = make_reviewer(api)
    first = reviewer.review(GOOD)
    assert api.request_count == 1
    second = reviewer.review(GOOD)
    assert api.request_count == 1
    assert second == first


def test_cached_verdict_survives_server_outage(api: FakeTokenReviewServer) -> None:
    reviewer = make_reviewer(api)
    reviewer.review(GOOD)
    api.stop()
    assert reviewer.review(GOOD).authenticated


def test_rejected_ttl_shorter_than_accepted(api: FakeTokenReviewServer) -> None:
    clock = FakeClock()
    reviewer = make_reviewer(api, clock, accepted_ttl_s=60, rejected_ttl_s=10)
    reviewer.review(GOOD)
    reviewer.review("bad")
    assert api.request_count == 2

    clock.advance(9)
    reviewer.review(GOOD)
    reviewer.review("bad")
    assert api.request_count == 2  # both still cached

    clock.advance(2)  # t=11: rejected expired, accepted still fresh
    reviewer.review(GOOD)
    assert api.request_count == 2
    reviewer.review("bad")
    assert api.request_count == 3

    clock.advance(50)  # t=61: accepted expired too
    reviewer.review(GOOD)
    assert api.request_count == 4


def test_cache_is_bounded_and_evicts_oldest(api: FakeTokenReviewServer) -> None:
    reviewer = make_reviewer(api, max_cache_entries=2)
    for token in ("t1", "t2", "t3"):
        reviewer.review(token)
    assert api.request_count == 3
    reviewer.review("t3")
    reviewer.review("t2")
    assert api.request_count == 3  # t2, t3 still cached
    reviewer.review("t1")
    assert api.request_count == 4  # t1 was the oldest and got evicted


def test_token_is_never_a_cache_key_nor_logged(api: FakeTokenReviewServer, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="kubernaut_storage.auth.tokenreview")
    reviewer = make_reviewer(api)
    reviewer.review(GOOD)
    reviewer.review("bad-secret-token")
    api.fail_with_status = 500
    with pytest.raises(TokenReviewUnavailable) as excinfo:
        reviewer.review("another-secret-token")

    # Inspecting the private cache on purpose: this is the property under test.
    keys = list(reviewer._cache)
    assert keys == [token_fingerprint(GOOD), token_fingerprint("bad-secret-token")]
    for secret in (GOOD, "bad-secret-token", "another-secret-token", CALLER):
        assert all(secret not in key for key in keys)
        assert secret not in caplog.text
        assert secret not in str(excinfo.value)
        assert secret not in repr(reviewer.config)


def test_concurrent_reviews_are_consistent(api: FakeTokenReviewServer) -> None:
    reviewer = make_reviewer(api)
    results: list[bool] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def work() -> None:
        try:
            for _ in range(20):
                ok = reviewer.review(GOOD).authenticated and not reviewer.review("bad").authenticated
                with lock:
                    results.append(ok)
        except BaseException as exc:  # surfaced below; a thread would swallow it
            with lock:
                errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(results) == 160
    assert all(results)
    # Concurrent first misses may each hit the API, but the cache soon absorbs the load.
    assert api.request_count <= 16


def test_own_token_file_is_reread_after_rotation(api: FakeTokenReviewServer, tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("old-token\n")
    clock = FakeClock()
    api.caller_token = "old-token"
    config = TokenReviewConfig.from_mapping({"api_url": api.url, "token_file": str(token_file), "accepted_ttl_s": 0})
    reviewer = TokenReviewer(config, clock=clock)
    assert reviewer.review(GOOD).authenticated

    # The kubelet rotates the projected token; the API server stops accepting the old one.
    token_file.write_text("new-token\n")
    api.caller_token = "new-token"
    clock.advance(120)
    assert reviewer.review(GOOD).authenticated


def test_tls_verified_against_ca_file(tmp_path: Path) -> None:
    tls = make_self_signed_cert(tmp_path)
    if tls is None:
        pytest.skip("openssl CLI not available to create a test certificate")
    with FakeTokenReviewServer(caller_token=CALLER, tls=tls) as server:
        server.tokens[GOOD] = (USER, GROUPS, ())
        assert server.url.startswith("https://")
        good = make_reviewer(server, ca_file=tls.cert_file)
        assert good.review(GOOD).authenticated

        # Trusting only the system store (not the cluster CA) must fail closed.
        untrusted = make_reviewer(server, ca_file=None)
        with pytest.raises(TokenReviewUnavailable, match="SSL"):
            untrusted.review(GOOD)


# -- configuration -------------------------------------------------------------


def test_in_cluster_config(tmp_path: Path) -> None:
    (tmp_path / "token").write_text("pod-token\n")
    (tmp_path / "ca.crt").write_text("dummy")
    config = TokenReviewConfig.in_cluster(
        audiences=["kubernaut-storage"],
        token_file=str(tmp_path / "token"),
        ca_file=str(tmp_path / "ca.crt"),
        service_host="10.0.0.1",
        service_port="443",
    )
    assert config.api_url == "https://10.0.0.1:443"
    assert config.bearer_token == "pod-token"
    assert config.ca_file == str(tmp_path / "ca.crt")
    assert config.audiences == ("kubernaut-storage",)
    assert "pod-token" not in repr(config)

    v6 = TokenReviewConfig.in_cluster(
        token_file=str(tmp_path / "token"),
        ca_file=str(tmp_path / "ca.crt"),
        service_host="fd00::1",
        service_port="443",
    )
    assert v6.api_url == "https://[fd00::1]:443"


def test_in_cluster_outside_cluster_raises_clear_error(tmp_path: Path) -> None:
    with pytest.raises(NotInClusterError, match="KUBERNETES_SERVICE_HOST"):
        TokenReviewConfig.in_cluster()
    with pytest.raises(NotInClusterError, match="token"):
        TokenReviewConfig.in_cluster(
            token_file=str(tmp_path / "missing"),
            service_host="10.0.0.1",
            service_port="443",
        )


def test_from_mapping_rejects_unknown_keys_and_normalises() -> None:
    with pytest.raises(ValueError, match="audience"):
        TokenReviewConfig.from_mapping({"api_url": "http://x", "bearer_token": "t", "audience": "a"})
    config = TokenReviewConfig.from_mapping(
        {"api_url": "http://x:1/", "bearer_token": "t", "audiences": "a", "timeout_s": 0.5}
    )
    assert config.api_url == "http://x:1"
    assert config.audiences == ("a",)
    assert config.timeout_s == 0.5
