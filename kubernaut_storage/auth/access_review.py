"""Authorization the Kubernetes way (AUTHZ_MODE=sar): after TokenReview, a SubjectAccessReview
asks the API server whether the caller may `verb` the configured resource (by default
`services/data-storage-service` in the service's namespace), as upstream Kubernaut's Data
Storage does; its controllers are granted that in RBAC, not by an allow-list here.

Verdicts are cached per process (AUTHZ_SAR_CACHE_SECONDS, at most MAX_ENTRIES) and reviews
spend the TokenReview budget of the process (kubernaut_storage/auth/tokenreview_limits.py). An
API server that cannot answer is a 503, never a 403: the caller retries, nothing is dropped.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from kubernaut_storage.auth.tokenreview import TokenReviewer

SUBJECT_ACCESS_REVIEW_PATH = "/apis/authorization.k8s.io/v1/subjectaccessreviews"
#: Verdicts one process keeps: a few per controller account and verb.
MAX_ENTRIES = 4096


@dataclass(frozen=True, slots=True)
class AccessTarget:
    """The resource a caller must be allowed to act on: `resource/name` in `namespace`."""

    namespace: str
    resource: str
    name: str

    @classmethod
    def parse(cls, *, namespace: str, resource: str) -> AccessTarget:
        kind, slash, name = resource.partition("/")
        if not slash or not kind or not name:
            raise ValueError(f"a SubjectAccessReview resource is resource/name, not {resource!r}")
        return cls(namespace=namespace, resource=kind, name=name)


class AccessReviewer:
    """SubjectAccessReviews with a bounded TTL cache; thread-safe."""

    def __init__(
        self,
        tokens: TokenReviewer,
        *,
        target: AccessTarget,
        ttl_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.tokens = tokens
        self.target = target
        self.ttl_s = ttl_s
        self._clock = clock
        self._lock = threading.Lock()
        self._cache: OrderedDict[tuple[str, str], tuple[bool, float]] = OrderedDict()

    def allowed(self, *, username: str, verb: str, client: str = "") -> bool:
        """Whether `username` may `verb` the target; raises TokenReviewUnavailable when the API
        server cannot say (TokenReviewThrottled when the process's review budget is spent)."""
        key = (username, verb)
        now = self._clock()
        with self._lock:
            cached = self._cache.get(key)
            if cached is not None and cached[1] > now:
                return cached[0]
        status = self.tokens.api_review(
            path=SUBJECT_ACCESS_REVIEW_PATH,
            body={
                "apiVersion": "authorization.k8s.io/v1",
                "kind": "SubjectAccessReview",
                "spec": {
                    "user": username,
                    "resourceAttributes": {
                        "namespace": self.target.namespace,
                        "verb": verb,
                        "group": "",
                        "resource": self.target.resource,
                        "name": self.target.name,
                    },
                },
            },
            client=client,
        )
        verdict = status.get("allowed") is True and status.get("denied") is not True
        with self._lock:
            self._cache[key] = (verdict, self._clock() + self.ttl_s)
            self._cache.move_to_end(key)
            while len(self._cache) > MAX_ENTRIES:
                self._cache.popitem(last=False)
        return verdict
