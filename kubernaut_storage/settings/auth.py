"""Who may write audit records: the authentication mode, the TokenReview client and
the per-endpoint allow-lists of ServiceAccount usernames. Imported by base.py.

Every value is read once from the environment here; `kubernaut_storage.auth.authentication` reads the settings.
"""

from __future__ import annotations

from typing import Any

import environ
from django.core.exceptions import ImproperlyConfigured

__all__ = [
    "AUDIT_WRITERS",
    "AUTHZ_MODE",
    "AUTHZ_SAR_CACHE_SECONDS",
    "AUTHZ_SAR_NAMESPACE",
    "AUTHZ_SAR_RESOURCE",
    "AUTH_MODE",
    "KUBERNAUT_NAMESPACE",
    "KUBERNETES_TOKENREVIEW",
]

env = environ.Env()

AUTH_MODES = ("tokenreview", "none")


def auth_mode_checked(mode: str) -> str:
    if mode not in AUTH_MODES:
        # A typo must not silently fall back to either mode.
        raise ImproperlyConfigured(f"AUTH_MODE must be one of {', '.join(AUTH_MODES)}, not {mode!r}")
    return mode


# "tokenreview": every audit POST needs `Authorization: Bearer <ServiceAccount token>`, checked
# with the Kubernetes TokenReview API. "none": no authentication; the gunicorn config refuses it
# on a non-loopback bind (kubernaut_storage/serving/hooks.py), production settings refuse it outright.
AUTH_MODE = auth_mode_checked(env.str("AUTH_MODE", default="tokenreview"))


def _tokenreview_options() -> dict[str, Any]:
    """KUBERNETES_TOKENREVIEW for `TokenReviewConfig.from_mapping`; only the values that are set.

    Without TOKENREVIEW_API_URL the in-cluster configuration is used: KUBERNETES_SERVICE_HOST/
    PORT, and the pod's mounted ServiceAccount token and CA (re-read as the kubelet rotates it).
    """
    options: dict[str, Any] = {
        "api_url": env.str("TOKENREVIEW_API_URL", default=""),
        "ca_file": env.str("TOKENREVIEW_CA_FILE", default=""),
        "token_file": env.str("TOKENREVIEW_TOKEN_FILE", default=""),
        # Tokens minted for another audience (e.g. a projected token for Vault) are refused
        # when this is set; empty means the API server's default audience.
        "audiences": env.list("TOKENREVIEW_AUDIENCES", default=[]),
        "timeout_s": env.float("TOKENREVIEW_TIMEOUT_SECONDS", default=2.0),
        # An accepted token is trusted this long without asking again: a revoked token keeps
        # working at most this long. Rejections are cached briefly so garbage cannot hammer
        # the API server, yet a freshly minted token is not refused for long.
        "accepted_ttl_s": env.float("TOKENREVIEW_ACCEPTED_TTL_SECONDS", default=60.0),
        "rejected_ttl_s": env.float("TOKENREVIEW_REJECTED_TTL_SECONDS", default=10.0),
        "max_cache_entries": env.int("TOKENREVIEW_CACHE_ENTRIES", default=10_000),
        # Reviews one process runs at once / starts per second; beyond, a cache miss answers
        # 503 + Retry-After at once, so invented tokens cannot flood the API server.
        "max_concurrent": env.int("TOKENREVIEW_MAX_CONCURRENT", default=8),
        "max_per_second": env.float("TOKENREVIEW_MAX_PER_SECOND", default=20.0),
        # Set by the kubelet in every pod: where the API server is, without TOKENREVIEW_API_URL.
        "service_host": env.str("KUBERNETES_SERVICE_HOST", default=""),
        "service_port": env.str("KUBERNETES_SERVICE_PORT", default=""),
    }
    return {key: value for key, value in options.items() if value not in ("", [], None)}


KUBERNETES_TOKENREVIEW = _tokenreview_options()

# The namespace the Kubernaut controllers run in; the default allow-lists name their accounts.
KUBERNAUT_NAMESPACE = env.str("KUBERNAUT_NAMESPACE", default="kubernaut-system")


def _service_account(name: str) -> str:
    return f"system:serviceaccount:{KUBERNAUT_NAMESPACE}:{name}"


# Per-endpoint allow-lists: only the controller that owns a kind may write it.
# AUDIT_WRITERS_<KIND> (comma-separated usernames) replaces a default; "*" allows any
# authenticated account, an empty value allows nobody.
AUDIT_WRITERS: dict[str, list[str]] = {
    "remediation": env.list(
        "AUDIT_WRITERS_REMEDIATION",
        default=[_service_account("remediation-processor"), _service_account("gateway")],
    ),
    "aianalysis": env.list("AUDIT_WRITERS_AIANALYSIS", default=[_service_account("aianalysis-controller")]),
    "workflow": env.list("AUDIT_WRITERS_WORKFLOW", default=[_service_account("workflowexecution-controller")]),
    "execution": env.list("AUDIT_WRITERS_EXECUTION", default=[_service_account("kubernetes-executor")]),
    # Upstream Kubernaut's audit events: each of its controllers writes them, under account
    # names its installation chooses, so any authenticated account unless narrowed.
    "events": env.list("AUDIT_WRITERS_EVENTS", default=["*"]),
}

# Who may post upstream Kubernaut's audit events after TokenReview: "allowlist" (AUDIT_WRITERS,
# above) or "sar", a SubjectAccessReview on AUTHZ_SAR_RESOURCE (resource/name) in
# AUTHZ_SAR_NAMESPACE, verb create, as upstream's Data Storage asks (kubernaut_storage/auth/access_review.py).
AUTHZ_MODE = env.str("AUTHZ_MODE", default="allowlist")
if AUTHZ_MODE not in ("allowlist", "sar"):
    raise ImproperlyConfigured(f"AUTHZ_MODE must be allowlist or sar, not {AUTHZ_MODE!r}")
AUTHZ_SAR_RESOURCE = env.str("AUTHZ_SAR_RESOURCE", default="services/data-storage-service")
AUTHZ_SAR_NAMESPACE = env.str("AUTHZ_SAR_NAMESPACE", default=KUBERNAUT_NAMESPACE)
# How long a verdict is kept per process: RBAC changes take effect within it.
AUTHZ_SAR_CACHE_SECONDS = env.float("AUTHZ_SAR_CACHE_SECONDS", default=30.0)
