"""DRF authentication (Kubernetes TokenReview) and per-endpoint authorization.

Wiring (in a view or ``REST_FRAMEWORK`` defaults)::

    authentication_classes = [KubernetesTokenAuthentication]
    permission_classes = [AllowedServiceAccounts]
    audit_kind = "aianalysis"

Settings, read through ``django.conf.settings`` at call time only (this module
imports without configured settings):

* ``KUBERNETES_TOKENREVIEW``: dict for
  :meth:`kubernaut_storage.auth.tokenreview.TokenReviewConfig.from_mapping`
  (``api_url``, ``ca_file``, ``token_file``, ``bearer_token``, ``audiences``,
  ``timeout_s``, ``accepted_ttl_s``, ``rejected_ttl_s``, ``max_cache_entries``,
  ``max_concurrent``, ``max_per_second``).
  Without ``api_url`` the in-cluster service account is used.
* ``AUDIT_WRITERS``: ``{audit_kind: [username, ...]}``; ``"*"`` allows any
  authenticated account. Kinds that are absent allow nobody.

Failure reasons (for metrics)
-----------------------------
Before raising, both classes store the reason on the underlying Django
``HttpRequest`` as ``request.auth_failure_reason`` (readable from middleware
and, via DRF's attribute proxying, from the DRF ``Request`` too). The raised
exception also carries it as ``exc.auth_failure_reason``. Values:

* ``"missing"``     -- no ``Authorization: Bearer`` credentials (401)
* ``"malformed"``   -- ``Bearer`` header that is empty/multi-part/bad charset, or a token
  that is not a well-formed JWT (401, no review)
* ``"rejected"``    -- the TokenReview API said not authenticated (401)
* ``"forbidden"``   -- authenticated, but not allowed for this endpoint (403)
* ``"unavailable"`` -- the TokenReview API could not answer, or the caller's address is at
  its share of this process's review budget (503)
"""

from __future__ import annotations

import contextlib
import logging
import threading
from typing import Any, Final

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.dispatch import receiver
from rest_framework import status
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.exceptions import (
    APIException,
    AuthenticationFailed,
    NotAuthenticated,
    PermissionDenied,
)
from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from kubernaut_storage.auth.access_review import AccessReviewer, AccessTarget
from kubernaut_storage.auth.tokenreview import (
    TokenReviewConfig,
    TokenReviewer,
    TokenReviewError,
    TokenReviewThrottled,
    TokenReviewUnavailable,
)
from kubernaut_storage.auth.tokenreview_limits import well_formed_jwt

logger = logging.getLogger(__name__)

REASON_MISSING: Final = "missing"
REASON_MALFORMED: Final = "malformed"
REASON_REJECTED: Final = "rejected"
REASON_FORBIDDEN: Final = "forbidden"
REASON_UNAVAILABLE: Final = "unavailable"

SETTINGS_KEY: Final = "KUBERNETES_TOKENREVIEW"
WRITERS_KEY: Final = "AUDIT_WRITERS"
WILDCARD: Final = "*"
REALM: Final = "kubernaut-storage"

# Real service-account JWTs are ~1-2 KiB; refuse absurd sizes before review.
MAX_TOKEN_LENGTH: Final = 16 * 1024


class AuthBackendUnavailable(APIException):
    """503: the Kubernetes TokenReview API could not be reached.

    ``retry_after`` is for the problem+json handler; ``wait`` mirrors it so
    DRF's stock exception handler also emits a ``Retry-After`` header.
    """

    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = "Authentication backend temporarily unavailable; retry later."
    default_code = "auth_backend_unavailable"
    retry_after: int = 5
    auth_failure_reason: str = REASON_UNAVAILABLE

    @property
    def wait(self) -> int:
        return self.retry_after


class ServiceAccountUser:
    """The authenticated caller as reported by TokenReview (not a DB user)."""

    is_authenticated: Final = True
    is_anonymous: Final = False
    is_active: Final = True

    def __init__(self, username: str) -> None:
        self.username = username

    @property
    def pk(self) -> str:
        # DRF's UserRateThrottle keys on user.pk; the username is the stable id.
        return self.username

    @property
    def namespace(self) -> str | None:
        """Namespace for ``system:serviceaccount:<ns>:<name>`` usernames."""
        parts = self.username.split(":")
        return parts[2] if len(parts) == 4 and parts[:2] == ["system", "serviceaccount"] else None

    def __str__(self) -> str:
        return self.username

    def __repr__(self) -> str:
        return f"ServiceAccountUser({self.username!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ServiceAccountUser) and other.username == self.username

    def __hash__(self) -> int:
        return hash(self.username)


# -- process-wide reviewer singleton --------------------------------------------

_reviewer: TokenReviewer | None = None
_reviewer_lock = threading.Lock()


def get_reviewer() -> TokenReviewer:
    """The shared reviewer (and its cache), built from settings on first use.

    Raises ``ImproperlyConfigured`` when the settings are invalid or the
    in-cluster service account is missing: that is a deployment bug (500) and
    also a useful readiness check, not a transient 503.
    """
    global _reviewer
    reviewer = _reviewer
    if reviewer is not None:
        return reviewer
    with _reviewer_lock:
        if _reviewer is None:
            options = getattr(settings, SETTINGS_KEY, None) or {}
            try:
                config = TokenReviewConfig.from_mapping(options)
            except (TokenReviewError, ValueError, OSError) as exc:
                raise ImproperlyConfigured(f"{SETTINGS_KEY}: {exc}") from exc
            _reviewer = TokenReviewer(config)
        return _reviewer


def set_reviewer(reviewer: TokenReviewer | None) -> None:
    """Replace (or with None, reset) the shared reviewer; for tests and wiring."""
    global _reviewer
    with _reviewer_lock:
        _reviewer = reviewer


_access_reviewer: AccessReviewer | None = None


def get_access_reviewer() -> AccessReviewer:
    """The shared SubjectAccessReview client (and its cache), on the shared TokenReview client."""
    global _access_reviewer
    with _reviewer_lock:
        access = _access_reviewer
    tokens = get_reviewer()
    if access is not None and access.tokens is tokens:
        return access
    try:
        target = AccessTarget.parse(namespace=settings.AUTHZ_SAR_NAMESPACE, resource=settings.AUTHZ_SAR_RESOURCE)
    except ValueError as exc:
        raise ImproperlyConfigured(f"AUTHZ_SAR_RESOURCE: {exc}") from exc
    access = AccessReviewer(tokens, target=target, ttl_s=settings.AUTHZ_SAR_CACHE_SECONDS)
    with _reviewer_lock:
        _access_reviewer = access
    return access


@receiver(setting_changed)
def _reset_reviewer_on_settings_change(*, setting: str, **kwargs: Any) -> None:
    # override_settings(KUBERNETES_TOKENREVIEW=...) must not reuse a reviewer
    # (and cache) built for the previous configuration.
    global _access_reviewer
    if setting == SETTINGS_KEY:
        set_reviewer(None)
    if setting == SETTINGS_KEY or setting.startswith("AUTHZ_"):
        with _reviewer_lock:
            _access_reviewer = None


def _record_failure(request: Any, reason: str) -> None:
    # DRF's Request proxies attribute reads to the wrapped HttpRequest, so
    # setting it there makes it visible to Django middleware and DRF alike.
    target = getattr(request, "_request", request)
    with contextlib.suppress(AttributeError):  # exotic request objects: metrics are best effort
        target.auth_failure_reason = reason


def _fail(exc: APIException, request: Any, reason: str) -> APIException:
    _record_failure(request, reason)
    exc.auth_failure_reason = reason  # type: ignore[attr-defined]
    return exc


# -- authentication ---------------------------------------------------------------


class KubernetesTokenAuthentication(BaseAuthentication):
    """``Authorization: Bearer <token>`` verified with the TokenReview API.

    * no header, or a non-Bearer scheme -> ``None`` (lets other authenticators
      run; the permission class then answers 401 with reason "missing")
    * malformed Bearer header -> 401 (reason "malformed")
    * token rejected -> 401 (reason "rejected")
    * TokenReview API down -> :class:`AuthBackendUnavailable` 503 ("unavailable")
    """

    keyword = "Bearer"

    def authenticate(self, request: Request) -> tuple[ServiceAccountUser, None] | None:
        header = get_authorization_header(request).split()
        if not header or header[0].lower() != self.keyword.lower().encode():
            return None
        if len(header) != 2:
            raise _fail(
                AuthenticationFailed("Invalid Authorization header: expected 'Bearer <token>'."),
                request,
                REASON_MALFORMED,
            )
        try:
            token = header[1].decode("ascii")
        except UnicodeDecodeError:
            token = ""
        if len(token) > MAX_TOKEN_LENGTH or not well_formed_jwt(token):
            # ServiceAccount tokens are JWTs: anything else is refused here, never reviewed.
            raise _fail(AuthenticationFailed("Invalid bearer token format."), request, REASON_MALFORMED)

        try:
            # The review budget is shared fairly among client addresses: the peer's, which no
            # header the client writes can change (kubernaut_storage/auth/tokenreview_limits.py).
            result = get_reviewer().review(token, client=request.META.get("REMOTE_ADDR") or "")
        except TokenReviewThrottled as exc:
            throttled = AuthBackendUnavailable()
            throttled.retry_after = 1  # a budget refills within the second
            raise _fail(throttled, request, REASON_UNAVAILABLE) from exc
        except TokenReviewUnavailable as exc:
            # tokenreview already logged the cause (without the token); no second log line.
            raise _fail(AuthBackendUnavailable(), request, REASON_UNAVAILABLE) from exc

        if not result.authenticated or not result.username:
            # Don't echo the API server's error to the caller; it may help an attacker.
            raise _fail(AuthenticationFailed("Invalid or expired bearer token."), request, REASON_REJECTED)
        return ServiceAccountUser(result.username), None

    def authenticate_header(self, request: Request) -> str:
        # Returning a value makes DRF answer 401 (not 403) for auth failures.
        # RFC 6750: add error="invalid_token" when a token was presented.
        reason = getattr(request, "auth_failure_reason", None)
        if reason in (REASON_REJECTED, REASON_MALFORMED):
            return f'{self.keyword} realm="{REALM}", error="invalid_token"'
        return f'{self.keyword} realm="{REALM}"'


# -- authorization ----------------------------------------------------------------


class AllowedServiceAccounts(BasePermission):
    """Allow only the service accounts listed in ``AUDIT_WRITERS[view.audit_kind]``.

    Unauthenticated -> ``NotAuthenticated`` (401, reason "missing" unless the
    authenticator already recorded one). Authenticated but not listed ->
    ``PermissionDenied`` (403, reason "forbidden") naming the endpoint.
    """

    def has_permission(self, request: Request, view: Any) -> bool:
        user = _authenticated_user(request)

        kind = getattr(view, "audit_kind", None)
        if not isinstance(kind, str) or not kind:
            # A view wired without audit_kind is a programming error: fail closed, loudly.
            raise ImproperlyConfigured(f"{type(view).__name__} uses AllowedServiceAccounts but has no audit_kind")

        username = getattr(user, "username", None)
        if writer_allowed(username=username, kind=kind):
            return True

        logger.info("audit write denied: %s -> %s", username, kind)
        kind_value = str(kind)  # an AuditKind's value ("remediation"), never its repr
        raise _fail(
            PermissionDenied(f"Service account {username!r} is not allowed to write {kind_value!r} audit events."),
            request,
            REASON_FORBIDDEN,
        )


class AccessReviewed(BasePermission):
    """Allow the authenticated caller when a SubjectAccessReview says it may `verb` the
    configured resource (AUTHZ_MODE=sar). 401 unauthenticated, 403 not allowed, 503 when the
    API server cannot answer."""

    def __init__(self, verb: str) -> None:
        self.verb = verb

    def has_permission(self, request: Request, view: Any) -> bool:
        user = _authenticated_user(request)
        username = str(getattr(user, "username", ""))
        try:
            allowed = get_access_reviewer().allowed(
                username=username, verb=self.verb, client=request.META.get("REMOTE_ADDR") or ""
            )
        except TokenReviewThrottled as exc:
            throttled = AuthBackendUnavailable()
            throttled.retry_after = 1
            raise _fail(throttled, request, REASON_UNAVAILABLE) from exc
        except TokenReviewUnavailable as exc:
            raise _fail(AuthBackendUnavailable(), request, REASON_UNAVAILABLE) from exc
        if allowed:
            return True
        logger.info("access review denied: %s may not %s", username, self.verb)
        raise _fail(
            PermissionDenied(f"Service account {username!r} may not {self.verb} audit events (SubjectAccessReview)."),
            request,
            REASON_FORBIDDEN,
        )


class AuthenticatedServiceAccount(BasePermission):
    """Any authenticated caller (401 otherwise, as AllowedServiceAccounts answers it).

    For the batch endpoint, whose records name their kinds: the view checks each record's
    kind against the allow-lists itself (`writers_forbidden`).
    """

    def has_permission(self, request: Request, view: Any) -> bool:
        _authenticated_user(request)
        return True


def _authenticated_user(request: Request) -> Any:
    user = getattr(request, "user", None)
    if not getattr(user, "is_authenticated", False):
        if getattr(request, "auth_failure_reason", None) is None:
            _record_failure(request, REASON_MISSING)
        exc = NotAuthenticated()
        exc.auth_failure_reason = getattr(  # type: ignore[attr-defined]
            request, "auth_failure_reason", REASON_MISSING
        )
        raise exc
    return user


def writer_allowed(*, username: str | None, kind: str) -> bool:
    """Whether `username` is on the allow-list of `kind` (AUDIT_WRITERS)."""
    allowed = _allowed_usernames(kind)
    return WILDCARD in allowed or (isinstance(username, str) and username in allowed)


def writers_forbidden(request: Request, *, kinds: dict[int, str]) -> None:
    """403 naming every record (position → kind) the authenticated caller may not write."""
    username = getattr(request.user, "username", None)
    verdicts = {kind: writer_allowed(username=username, kind=kind) for kind in set(kinds.values())}
    forbidden = [f"records[{index}] ({kind})" for index, kind in kinds.items() if not verdicts[kind]]
    if not forbidden:
        return
    logger.info("audit batch write denied: %s -> %s", username, sorted({k for k, ok in verdicts.items() if not ok}))
    raise _fail(
        PermissionDenied(f"Service account {username!r} is not allowed to write {', '.join(forbidden)}."),
        request,
        REASON_FORBIDDEN,
    )


def _allowed_usernames(kind: str) -> frozenset[str]:
    writers = getattr(settings, WRITERS_KEY, None) or {}
    if not isinstance(writers, dict):
        raise ImproperlyConfigured(f"{WRITERS_KEY} must be a dict of kind -> usernames")
    entries = writers.get(kind) or ()
    if isinstance(entries, str):
        # Guard against "username" instead of ["username"]: `in` on a str
        # would be a substring test and silently over-authorize.
        raise ImproperlyConfigured(f"{WRITERS_KEY}[{kind!r}] must be a list, not a string")
    return frozenset(entries)
