"""Kubernetes TokenReview client with an in-process result cache.

Callers (the DRF authentication class) hand us the bearer token a client
presented; we ask the Kubernetes API server whether it is valid by creating a
``TokenReview`` object, and cache the verdict so that a busy writer does not
cost one API round trip per audit event.

Design notes:

* Stdlib only (``http.client`` + ``ssl``): a single POST needs no connection
  pool, and ``http.client`` neither follows redirects nor honours
  ``HTTPS_PROXY`` -- both of which could leak our own service-account token or
  the reviewed token to a third party if ``urllib`` were used.
* The cache is keyed by the SHA-256 of the token. The raw token is never stored
  as a key, never logged, and never put into an exception message.
* "Could not get an answer" (connect error, timeout, 5xx, our own credentials
  refused, garbage body) raises :class:`TokenReviewUnavailable` and is *not*
  cached, so the HTTP layer can answer 503 instead of wrongly answering 401.
* An accepted verdict is reviewed again before it expires: the first request in
  the last quarter of its life starts one review in the background and every
  request meanwhile is answered from the cached verdict. A writer that keeps
  writing is never without a verdict; one left to expire would have its next
  request wait for a share of the review budget, which a flood of invented
  tokens keeps busy.
* This module deliberately imports nothing from Django or DRF so it can be used
  and tested without configured settings.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import logging
import os
import ssl
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import urlsplit

from kubernaut_storage.auth.tokenreview_limits import ReviewBudget

logger = logging.getLogger(__name__)

TOKENREVIEW_PATH = "/apis/authentication.k8s.io/v1/tokenreviews"
SERVICEACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
DEFAULT_TOKEN_FILE = f"{SERVICEACCOUNT_DIR}/token"
DEFAULT_CA_FILE = f"{SERVICEACCOUNT_DIR}/ca.crt"

# Projected service-account tokens are rotated by the kubelet (roughly hourly),
# so when the config names a token file we re-read it this often, like
# client-go does, instead of pinning the token read at start-up.
OWN_TOKEN_REFRESH_S = 60.0

# Upper bound for the API server's answer; a TokenReview status is tiny, so
# anything bigger is a misbehaving or hostile endpoint.
MAX_RESPONSE_BYTES = 1 << 20

# An accepted verdict is renewed from this fraction of its TTL on (45 s of 60): a writer
# writing at least every 15 s never sees it expire, and a renewal that found no budget or no
# API server is tried again by the next request a second later, for the whole last quarter.
RENEW_AFTER_FRACTION = 0.75
RENEW_RETRY_SECONDS = 1.0


class TokenReviewError(Exception):
    """Base class for errors raised by this module."""


class NotInClusterError(TokenReviewError):
    """In-cluster configuration was requested but we are not running in a pod."""


class TokenReviewUnavailable(TokenReviewError):  # noqa: N818 - name is part of the agreed API
    """The API server could not give a verdict (down, timeout, 5xx, bad answer).

    The message never contains the reviewed token.
    """


class TokenReviewThrottled(TokenReviewUnavailable):
    """The caller is at its share of this process's review budget (in flight or per second): retry in a second."""


@dataclass(frozen=True)
class TokenReviewConfig:
    """Everything needed to call the TokenReview API. Immutable and hashable.

    ``bearer_token`` is the *service's own* credential used to call the API
    server. If ``bearer_token_file`` is also set, the reviewer re-reads that
    file periodically (token rotation) and ``bearer_token`` is only the
    initial/fallback value.
    """

    api_url: str
    ca_file: str | None
    bearer_token: str = field(repr=False)
    audiences: tuple[str, ...] = ()
    timeout_s: float = 2.0
    accepted_ttl_s: float = 60.0
    rejected_ttl_s: float = 10.0
    max_cache_entries: int = 10_000
    bearer_token_file: str | None = None
    # Reviews in flight / started per second in this process (kubernaut_storage/auth/tokenreview_limits.py).
    max_concurrent: int = 8
    max_per_second: float = 20.0

    def __post_init__(self) -> None:
        # Accept any iterable of audiences (settings often hold a list) but
        # store a tuple so the dataclass stays hashable and truly frozen.
        object.__setattr__(self, "audiences", tuple(self.audiences))
        object.__setattr__(self, "api_url", self.api_url.rstrip("/"))
        parts = urlsplit(self.api_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"api_url must be an http(s) URL with a host, got {self.api_url!r}")
        if not self.bearer_token and not self.bearer_token_file:
            raise ValueError("bearer_token (or bearer_token_file) is required")
        if self.timeout_s <= 0:
            raise ValueError("timeout_s must be > 0")
        if self.accepted_ttl_s < 0 or self.rejected_ttl_s < 0:
            raise ValueError("cache TTLs must be >= 0")
        if self.max_cache_entries < 0:
            raise ValueError("max_cache_entries must be >= 0")
        if self.max_concurrent < 1 or self.max_per_second <= 0:
            raise ValueError("max_concurrent must be >= 1 and max_per_second > 0")

    @classmethod
    def in_cluster(
        cls,
        audiences: Iterable[str] = (),
        *,
        timeout_s: float = 2.0,
        accepted_ttl_s: float = 60.0,
        rejected_ttl_s: float = 10.0,
        max_cache_entries: int = 10_000,
        max_concurrent: int = 8,
        max_per_second: float = 20.0,
        token_file: str = DEFAULT_TOKEN_FILE,
        ca_file: str = DEFAULT_CA_FILE,
        service_host: str = "",
        service_port: str = "",
    ) -> TokenReviewConfig:
        """Build a config from the API server's in-cluster address and the mounted account.

        `service_host`/`service_port` are the kubelet's KUBERNETES_SERVICE_HOST/PORT (read by
        the settings). Raises :class:`NotInClusterError` with an actionable message when they
        or the mounted files are missing.
        """
        host, port = service_host, service_port
        if not host or not port:
            raise NotInClusterError(
                "not running inside a Kubernetes pod: KUBERNETES_SERVICE_HOST / "
                "KUBERNETES_SERVICE_PORT are not set; configure "
                "KUBERNETES_TOKENREVIEW['api_url'] explicitly"
            )
        try:
            bearer = _read_token_file(token_file)
        except OSError as exc:
            raise NotInClusterError(
                f"cannot read the service-account token at {token_file} "
                f"({exc.strerror or exc}); is automountServiceAccountToken disabled?"
            ) from exc
        if not os.path.isfile(ca_file):
            raise NotInClusterError(f"service-account CA bundle not found at {ca_file}")
        # IPv6 service hosts must be bracketed inside a URL.
        host_part = f"[{host}]" if ":" in host else host
        return cls(
            api_url=f"https://{host_part}:{port}",
            ca_file=ca_file,
            bearer_token=bearer,
            audiences=tuple(audiences),
            timeout_s=timeout_s,
            accepted_ttl_s=accepted_ttl_s,
            rejected_ttl_s=rejected_ttl_s,
            max_cache_entries=max_cache_entries,
            bearer_token_file=token_file,
            max_concurrent=max_concurrent,
            max_per_second=max_per_second,
        )

    @classmethod
    def from_mapping(cls, options: Mapping[str, Any]) -> TokenReviewConfig:
        """Build a config from a settings-style dict (``KUBERNETES_TOKENREVIEW``).

        Recognised keys: ``api_url``, ``ca_file``, ``token_file``,
        ``bearer_token``, ``audiences``, ``timeout_s``, ``accepted_ttl_s``,
        ``rejected_ttl_s``, ``max_cache_entries``, ``max_concurrent``,
        ``max_per_second``, ``service_host``, ``service_port``. Without ``api_url`` the in-cluster configuration is
        used (``token_file``/``ca_file`` then override the mounted paths). Unknown keys are rejected so that a typo
        does not silently weaken authentication.
        """
        allowed = {
            "api_url",
            "ca_file",
            "token_file",
            "bearer_token",
            "audiences",
            "timeout_s",
            "accepted_ttl_s",
            "rejected_ttl_s",
            "max_cache_entries",
            "max_concurrent",
            "max_per_second",
            "service_host",
            "service_port",
        }
        unknown = set(options) - allowed
        if unknown:
            raise ValueError(f"unknown KUBERNETES_TOKENREVIEW keys: {sorted(unknown)}")
        audiences = options.get("audiences") or ()
        if isinstance(audiences, str):
            # A bare string would otherwise be split into characters.
            audiences = (audiences,)
        tuning: dict[str, Any] = {
            key: options[key]
            for key in (
                "timeout_s",
                "accepted_ttl_s",
                "rejected_ttl_s",
                "max_cache_entries",
                "max_concurrent",
                "max_per_second",
            )
            if options.get(key) is not None
        }
        api_url = options.get("api_url")
        if not api_url:
            located = {
                key: options[key]
                for key in ("token_file", "ca_file", "service_host", "service_port")
                if options.get(key)
            }
            return cls.in_cluster(audiences=audiences, **located, **tuning)
        token_file = options.get("token_file") or None
        bearer = options.get("bearer_token") or ""
        if token_file and not bearer:
            bearer = _read_token_file(token_file)
        return cls(
            api_url=api_url,
            ca_file=options.get("ca_file") or None,
            bearer_token=bearer,
            audiences=tuple(audiences),
            bearer_token_file=token_file,
            **tuning,
        )


@dataclass(frozen=True)
class ReviewResult:
    """Verdict for one token."""

    authenticated: bool
    username: str | None = None
    error: str | None = None
    audiences: tuple[str, ...] = ()


@dataclass(frozen=True)
class _CacheEntry:
    result: ReviewResult
    expires_at: float
    # When a request starts renewing it (accepted verdicts only; never for rejected ones).
    renew_at: float = float("inf")


def token_fingerprint(token: str) -> str:
    """SHA-256 hex digest of the token: the cache key, safe to keep in memory."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _read_token_file(path: str) -> str:
    with open(path, encoding="utf-8") as fh:
        token = fh.read().strip()
    if not token:
        raise OSError(f"token file {path} is empty")
    return token


class TokenReviewer:
    """Thread-safe TokenReview client with a bounded TTL cache.

    ``clock`` is injectable (monotonic seconds) so TTL behaviour can be tested
    without sleeping.
    """

    def __init__(self, config: TokenReviewConfig, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.config = config
        self._clock = clock
        self._lock = threading.Lock()
        # Insertion-ordered so the oldest entry is evicted first when full.
        self._cache: OrderedDict[str, _CacheEntry] = OrderedDict()
        # Fingerprints whose verdict is being renewed in the background (one review each).
        self._renewing: set[str] = set()
        self._budget = ReviewBudget(
            max_concurrent=config.max_concurrent, max_per_second=config.max_per_second, clock=clock
        )
        self._own_token = config.bearer_token
        self._own_token_read_at = clock() if config.bearer_token else float("-inf")
        self._ssl_context = self._build_ssl_context()
        parts = urlsplit(config.api_url)
        self._https = parts.scheme == "https"
        self._host = parts.hostname or ""
        self._port = parts.port
        self._path = (parts.path or "") + TOKENREVIEW_PATH

    # -- public API -----------------------------------------------------

    def review(self, token: str, *, client: str = "") -> ReviewResult:
        """Return the verdict for ``token``, from cache when still fresh.

        ``client`` names the caller (its address) whose share of the review budget a
        review spends. Raises :class:`TokenReviewUnavailable` when no verdict could be
        obtained (:class:`TokenReviewThrottled` when the client is at its share of this
        process's review budget), and ``ValueError`` for an empty token (the caller
        should have rejected it as malformed).
        """
        if not token:
            raise ValueError("empty token")
        key = token_fingerprint(token)
        now = self._clock()
        renew = False
        with self._lock:
            entry = self._cache.get(key)
            if entry is not None and entry.expires_at > now:
                renew = entry.renew_at <= now and key not in self._renewing
                if renew:
                    self._renewing.add(key)
            elif entry is not None:
                del self._cache[key]
                entry = None
        if entry is not None:
            if renew:
                self._renew(token, key, client=client)
            return entry.result

        # The network call happens outside the lock so one slow review does
        # not serialise every other request. Two concurrent misses for the
        # same token may both call the API; that is harmless.
        if not self._budget.acquire(client):
            raise TokenReviewThrottled("TokenReview budget of this process exhausted")
        try:
            result = self._call_api(token, key)
        finally:
            self._budget.release(client)
        self._store(key, result)
        return result

    def api_review(self, *, path: str, body: dict[str, Any], client: str = "") -> dict[str, Any]:
        """POST another review (a SubjectAccessReview) to the same API server with the same
        credentials, from the same per-process budget; its `status` object. Raises
        TokenReviewUnavailable (TokenReviewThrottled) like `review`."""
        if not self._budget.acquire(client):
            raise TokenReviewThrottled("review budget of this process exhausted")
        try:
            conn = self._connection()
            try:
                conn.request(
                    "POST",
                    urlsplit(self.config.api_url).path + path,
                    body=json.dumps(body).encode("utf-8"),
                    headers={
                        "Authorization": f"Bearer {self._current_own_token()}",
                        "Content-Type": "application/json",
                        "Accept": "application/json",
                        "User-Agent": "kubernaut-storage/tokenreview",
                    },
                )
                response = conn.getresponse()
                raw = response.read(MAX_RESPONSE_BYTES + 1)
            except (OSError, http.client.HTTPException) as exc:
                logger.warning("review %s: API server unreachable: %s", path, type(exc).__name__)
                raise TokenReviewUnavailable(f"API server unreachable: {type(exc).__name__}") from exc
            finally:
                conn.close()
        finally:
            self._budget.release(client)
        if not 200 <= response.status < 300 or len(raw) > MAX_RESPONSE_BYTES:
            logger.warning("review %s: API server answered HTTP %d", path, response.status)
            raise TokenReviewUnavailable(f"API server answered HTTP {response.status}")
        try:
            status = json.loads(raw).get("status") or {}
        except (ValueError, AttributeError) as exc:
            raise TokenReviewUnavailable("API server returned an unparseable answer") from exc
        if not isinstance(status, dict):
            raise TokenReviewUnavailable("API server returned an unparseable answer")
        return status

    # -- internals --------------------------------------------------------

    def _store(self, key: str, result: ReviewResult) -> None:
        ttl = self.config.accepted_ttl_s if result.authenticated else self.config.rejected_ttl_s
        if ttl <= 0 or self.config.max_cache_entries <= 0:
            return
        with self._lock:
            now = self._clock()
            renew_at = now + ttl * RENEW_AFTER_FRACTION if result.authenticated else float("inf")
            self._cache[key] = _CacheEntry(result, now + ttl, renew_at)
            self._cache.move_to_end(key)
            self._evict_locked(now)

    def _renew(self, token: str, key: str, *, client: str) -> None:
        """Review a cached accepted verdict again in the background; the cached one serves meanwhile."""
        if not self._budget.acquire(client):
            self._renew_later(key)
            return

        def renewal() -> None:
            try:
                result = self._call_api(token, key)
            except TokenReviewUnavailable:
                self._renew_later(key)  # tokenreview already logged why
            else:
                self._store(key, result)
            finally:
                self._budget.release(client)
                with self._lock:
                    self._renewing.discard(key)

        threading.Thread(target=renewal, name="tokenreview-renewal", daemon=True).start()

    def _renew_later(self, key: str) -> None:
        with self._lock:
            self._renewing.discard(key)
            entry = self._cache.get(key)
            if entry is not None:
                self._cache[key] = replace(entry, renew_at=self._clock() + RENEW_RETRY_SECONDS)

    def _evict_locked(self, now: float) -> None:
        # Drop expired entries from the old end first (cheap, usually few),
        # then enforce the size bound by evicting the oldest insertions.
        while self._cache:
            oldest_key, oldest = next(iter(self._cache.items()))
            if oldest.expires_at > now:
                break
            del self._cache[oldest_key]
        while len(self._cache) > self.config.max_cache_entries:
            self._cache.popitem(last=False)

    def _build_ssl_context(self) -> ssl.SSLContext | None:
        if not self.config.api_url.startswith("https"):
            return None
        # create_default_context() enables certificate and hostname checks;
        # with a CA file only that CA is trusted (the cluster CA), otherwise
        # the system store is used.
        if self.config.ca_file:
            return ssl.create_default_context(cafile=self.config.ca_file)
        return ssl.create_default_context()

    def _current_own_token(self) -> str:
        path = self.config.bearer_token_file
        if not path:
            return self._own_token
        now = self._clock()
        with self._lock:
            if now - self._own_token_read_at < OWN_TOKEN_REFRESH_S:
                return self._own_token
        try:
            token = _read_token_file(path)
        except OSError as exc:
            if not self._own_token:
                raise TokenReviewUnavailable(f"cannot read own token file {path}: {exc}") from exc
            # Keep using the last good token; the kubelet rewrites the file
            # atomically, so a failed read is transient.
            logger.warning("tokenreview: cannot re-read own token file %s: %s", path, exc)
            token = self._own_token
        with self._lock:
            self._own_token = token
            self._own_token_read_at = now
        return token

    def _connection(self) -> http.client.HTTPConnection:
        if self._https:
            return http.client.HTTPSConnection(
                self._host, self._port, timeout=self.config.timeout_s, context=self._ssl_context
            )
        return http.client.HTTPConnection(self._host, self._port, timeout=self.config.timeout_s)

    def _call_api(self, token: str, key: str) -> ReviewResult:
        spec: dict[str, Any] = {"token": token}
        if self.config.audiences:
            spec["audiences"] = list(self.config.audiences)
        body = json.dumps({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": spec}).encode(
            "utf-8"
        )
        headers = {
            "Authorization": f"Bearer {self._current_own_token()}",
            "Content-Type": "application/json",
            "Accept": "application/json",
            "User-Agent": "kubernaut-storage/tokenreview",
        }
        # Only a short fingerprint prefix is ever logged, never the token.
        fp = key[:12]
        conn = self._connection()
        try:
            conn.request("POST", self._path, body=body, headers=headers)
            response = conn.getresponse()
            raw = response.read(MAX_RESPONSE_BYTES + 1)
            status = response.status
        except (OSError, http.client.HTTPException) as exc:
            # OSError covers refused connections, DNS failures, TLS
            # verification errors and socket timeouts.
            logger.warning("tokenreview %s: API server unreachable: %s", fp, type(exc).__name__)
            raise TokenReviewUnavailable(f"TokenReview API unreachable: {type(exc).__name__}: {exc}") from exc
        finally:
            conn.close()

        if not 200 <= status < 300:
            # 5xx/429: server trouble. 401/403: *our* credentials or RBAC
            # (tokenreviews/create) are wrong -- not the client's fault, so
            # this must not turn into a 401 for the caller either.
            logger.warning("tokenreview %s: API server answered HTTP %d", fp, status)
            raise TokenReviewUnavailable(f"TokenReview API answered HTTP {status}")
        if len(raw) > MAX_RESPONSE_BYTES:
            raise TokenReviewUnavailable("TokenReview API answer too large")
        try:
            payload = json.loads(raw)
            status_obj = payload.get("status") or {}
            if not isinstance(status_obj, dict):
                raise TypeError("status is not an object")
        except (ValueError, TypeError, AttributeError) as exc:
            raise TokenReviewUnavailable("TokenReview API returned an unparseable answer") from exc
        result = self._interpret(status_obj)
        logger.debug(
            "tokenreview %s: authenticated=%s user=%s",
            fp,
            result.authenticated,
            result.username,
        )
        return result

    def _interpret(self, status: dict[str, Any]) -> ReviewResult:
        error = status.get("error")
        error = str(error) if error else None
        if status.get("authenticated") is not True:
            return ReviewResult(authenticated=False, error=error or "token not authenticated")
        user = status.get("user") or {}
        username = user.get("username") if isinstance(user, dict) else None
        if not isinstance(username, str) or not username:
            return ReviewResult(authenticated=False, error="TokenReview returned no username")
        raw_aud = status.get("audiences") or []
        audiences = tuple(str(a) for a in raw_aud) if isinstance(raw_aud, list) else ()
        if self.config.audiences and not set(audiences) & set(self.config.audiences):
            # The API server should already refuse such tokens, but an
            # authenticator (e.g. a webhook) may ignore audiences; check the
            # echoed audiences ourselves, per the TokenReview contract.
            return ReviewResult(
                authenticated=False,
                error="token audiences do not match the required audiences",
            )
        return ReviewResult(authenticated=True, username=username, audiences=audiences)
