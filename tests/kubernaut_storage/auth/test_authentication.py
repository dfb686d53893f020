"""Tests for KubernetesTokenAuthentication + AllowedServiceAccounts.

Runs with ``-p no:django``: the project settings are not needed, so we
configure a minimal settings object ourselves before importing DRF (DRF reads
settings at import time). If settings are already configured (e.g. when run
under pytest-django), the two settings under test are applied per test with
``override_settings`` anyway, so the tests do not depend on which wins.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import django
from django.conf import settings

if not settings.configured:
    settings.configure(
        DEBUG=False,
        SECRET_KEY="test-only",
        ALLOWED_HOSTS=["testserver"],
        INSTALLED_APPS=["django.contrib.contenttypes", "django.contrib.auth", "rest_framework"],
        DATABASES={},
        REST_FRAMEWORK={
            "DEFAULT_AUTHENTICATION_CLASSES": [],
            "DEFAULT_PERMISSION_CLASSES": [],
            "UNAUTHENTICATED_USER": None,
        },
        KUBERNETES_TOKENREVIEW={},
        AUDIT_WRITERS={},
    )
    django.setup()

# DRF modules read settings on import, so they must come after configure()
# (hence imports below module code; E402 is intentionally violated here).
import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.test import APIRequestFactory
from rest_framework.views import APIView

from kubernaut_storage.auth import authentication as auth
from kubernaut_storage.auth.authentication import (
    AllowedServiceAccounts,
    AuthBackendUnavailable,
    KubernetesTokenAuthentication,
    ServiceAccountUser,
)
from testutils.tokenreview_server import FakeTokenReviewServer, jwt_shaped

REPO_ROOT = Path(__file__).resolve().parents[3]
CALLER = "storage-own-token"
AIANALYSIS = "system:serviceaccount:kubernaut-system:aianalysis-controller"
WORKFLOW = "system:serviceaccount:kubernaut-system:workflow-controller"
AI_TOKEN = jwt_shaped("ai-token")
WF_TOKEN = jwt_shaped("wf-token")
FORGED_TOKEN = jwt_shaped("forged-token")

WRITERS = {
    "aianalysis": [AIANALYSIS],
    "workflow": [WORKFLOW],
    "execution": ["*"],
}


class AIAnalysisAuditView(APIView):
    # Tuples: immutable class attributes (RUF012) that DRF iterates just the same.
    authentication_classes = (KubernetesTokenAuthentication,)
    permission_classes = (AllowedServiceAccounts,)
    audit_kind = "aianalysis"

    def post(self, request: Request) -> Response:
        user = request.user
        assert isinstance(user, ServiceAccountUser)
        return Response({"user": str(user)}, status=201)


class ExecutionAuditView(AIAnalysisAuditView):
    audit_kind = "execution"


class UnlistedKindView(AIAnalysisAuditView):
    audit_kind = "remediation"  # absent from AUDIT_WRITERS: nobody may write


class MissingKindView(APIView):
    # Tuples: immutable class attributes (RUF012) that DRF iterates just the same.
    authentication_classes = (KubernetesTokenAuthentication,)
    permission_classes = (AllowedServiceAccounts,)

    def post(self, request: Request) -> Response:  # pragma: no cover - never reached
        return Response(status=201)


factory = APIRequestFactory()


@pytest.fixture
def api() -> Iterator[FakeTokenReviewServer]:
    server = FakeTokenReviewServer(caller_token=CALLER)
    server.tokens[AI_TOKEN] = (AIANALYSIS, ["system:serviceaccounts"], ["kubernaut-storage"])
    server.tokens[WF_TOKEN] = (WORKFLOW, ["system:serviceaccounts"], ["kubernaut-storage"])
    with (
        server,
        override_settings(
            KUBERNETES_TOKENREVIEW={
                "api_url": server.url,
                "bearer_token": CALLER,
                "audiences": ["kubernaut-storage"],
                "timeout_s": 1.0,
            },
            AUDIT_WRITERS=WRITERS,
        ),
    ):
        # override_settings fires setting_changed, which resets the shared
        # reviewer; be explicit anyway so no cache leaks between tests.
        auth.set_reviewer(None)
        yield server
    auth.set_reviewer(None)


def call(view: type[APIView], authorization: str | None = None) -> tuple[Any, Any]:
    """POST to ``view``; return (rendered response, underlying HttpRequest)."""
    extra = {"HTTP_AUTHORIZATION": authorization} if authorization is not None else {}
    request = factory.post("/audit/", {"k": "v"}, format="json", **extra)
    response = view.as_view()(request)
    # DRF Responses need rendering; the project's problem+json handler (active
    # when run under the real settings) already returns a plain HttpResponse.
    if hasattr(response, "render"):
        response.render()
    return response, request


def test_success_returns_service_account_user(api: FakeTokenReviewServer) -> None:
    response, request = call(AIAnalysisAuditView, f"Bearer {AI_TOKEN}")
    assert response.status_code == 201, response.content
    assert json.loads(response.content) == {"user": AIANALYSIS}
    assert getattr(request, "auth_failure_reason", None) is None
    assert api.bodies[0]["spec"]["audiences"] == ["kubernaut-storage"]


def test_scheme_is_case_insensitive_and_reviews_are_cached(api: FakeTokenReviewServer) -> None:
    for _ in range(3):
        response, _ = call(AIAnalysisAuditView, f"bearer {AI_TOKEN}")
        assert response.status_code == 201
    assert api.request_count == 1  # the process-wide reviewer cached the verdict


def test_missing_header_is_401_with_bearer_challenge(api: FakeTokenReviewServer) -> None:
    response, request = call(AIAnalysisAuditView)
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert request.auth_failure_reason == "missing"
    assert api.request_count == 0


def test_other_scheme_is_treated_as_missing(api: FakeTokenReviewServer) -> None:
    response, request = call(AIAnalysisAuditView, "Basic dXNlcjpwYXNz")
    assert response.status_code == 401
    assert request.auth_failure_reason == "missing"


@pytest.mark.parametrize(
    "header",
    ["Bearer", "Bearer  ", "Bearer a b", "Bearer tok\u00e9n", "Bearer {}", "Bearer " + "a" * 20000],
)
def test_malformed_header_is_401(api: FakeTokenReviewServer, header: str) -> None:
    response, request = call(AIAnalysisAuditView, header)
    assert response.status_code == 401
    assert 'error="invalid_token"' in response["WWW-Authenticate"]
    assert request.auth_failure_reason == "malformed"
    assert api.request_count == 0  # garbage never reaches the API server


def test_rejected_token_is_401(api: FakeTokenReviewServer) -> None:
    response, request = call(AIAnalysisAuditView, f"Bearer {FORGED_TOKEN}")
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert request.auth_failure_reason == "rejected"
    assert FORGED_TOKEN.encode() not in response.content


def test_wrong_service_account_is_403_naming_endpoint(api: FakeTokenReviewServer) -> None:
    response, request = call(AIAnalysisAuditView, f"Bearer {WF_TOKEN}")
    assert response.status_code == 403
    detail = str(json.loads(response.content)["detail"])
    assert "aianalysis" in detail
    assert WORKFLOW in detail
    assert WF_TOKEN not in detail
    assert request.auth_failure_reason == "forbidden"


def test_wildcard_allows_any_authenticated_account(api: FakeTokenReviewServer) -> None:
    assert call(ExecutionAuditView, f"Bearer {WF_TOKEN}")[0].status_code == 201
    assert call(ExecutionAuditView, f"Bearer {AI_TOKEN}")[0].status_code == 201
    # ...but still not anonymous callers.
    assert call(ExecutionAuditView)[0].status_code == 401


def test_kind_absent_from_writers_allows_nobody(api: FakeTokenReviewServer) -> None:
    assert call(UnlistedKindView, f"Bearer {AI_TOKEN}")[0].status_code == 403


def check_permission(view: type[APIView], username: str) -> bool:
    # Call the permission directly: through a view, the project's problem+json
    # handler (when active) would turn ImproperlyConfigured into a 500 response.
    request = Request(factory.post("/audit/"))
    request.user = ServiceAccountUser(username)  # type: ignore[assignment]  # stubs expect a Django User
    return AllowedServiceAccounts().has_permission(request, view())


def test_view_without_audit_kind_fails_closed(api: FakeTokenReviewServer) -> None:
    with pytest.raises(ImproperlyConfigured, match="audit_kind"):
        check_permission(MissingKindView, AIANALYSIS)


def test_writers_entry_must_be_a_list(api: FakeTokenReviewServer) -> None:
    # "system:serviceaccount:..." as a bare string would make `in` a substring test.
    with (
        override_settings(AUDIT_WRITERS={"aianalysis": AIANALYSIS}),
        pytest.raises(ImproperlyConfigured, match="list"),
    ):
        check_permission(AIAnalysisAuditView, AIANALYSIS)
    assert check_permission(AIAnalysisAuditView, AIANALYSIS)


@pytest.mark.parametrize("failure", ["down", "500"])
def test_backend_unavailable_is_503(api: FakeTokenReviewServer, failure: str) -> None:
    if failure == "down":
        api.stop()
    else:
        api.fail_with_status = 500
    response, request = call(AIAnalysisAuditView, f"Bearer {AI_TOKEN}")
    assert response.status_code == 503
    assert response["Retry-After"] == str(AuthBackendUnavailable.retry_after)
    assert "WWW-Authenticate" not in response
    assert request.auth_failure_reason == "unavailable"


def test_exceptions_carry_the_reason(api: FakeTokenReviewServer) -> None:
    api.fail_with_status = 500
    request = Request(factory.post("/", HTTP_AUTHORIZATION=f"Bearer {AI_TOKEN}"))
    with pytest.raises(AuthBackendUnavailable) as excinfo:
        KubernetesTokenAuthentication().authenticate(request)
    assert excinfo.value.auth_failure_reason == "unavailable"
    assert excinfo.value.status_code == 503


def test_settings_change_rebuilds_reviewer(api: FakeTokenReviewServer) -> None:
    first = auth.get_reviewer()
    assert auth.get_reviewer() is first
    with override_settings(KUBERNETES_TOKENREVIEW={"api_url": api.url, "bearer_token": "x"}):
        assert auth.get_reviewer() is not first


def test_not_in_cluster_is_improperly_configured(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    with (
        override_settings(KUBERNETES_TOKENREVIEW={"audiences": ["kubernaut-storage"]}),
        pytest.raises(ImproperlyConfigured, match="KUBERNETES_SERVICE_HOST"),
    ):
        auth.get_reviewer()
    auth.set_reviewer(None)


def test_service_account_user() -> None:
    user = ServiceAccountUser(AIANALYSIS)
    assert user.is_authenticated
    assert not user.is_anonymous
    assert str(user) == AIANALYSIS
    assert user.namespace == "kubernaut-system"
    assert user.pk == AIANALYSIS
    assert ServiceAccountUser("alice").namespace is None


def test_module_imports_without_configured_settings() -> None:
    # Settings/urls are owned elsewhere; importing auth must not touch them.
    code = (
        "import os; os.environ.pop('DJANGO_SETTINGS_MODULE', None)\n"
        "import kubernaut_storage.auth.authentication, kubernaut_storage.auth.tokenreview\n"
        "from django.conf import settings; assert not settings.configured\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO_ROOT)
