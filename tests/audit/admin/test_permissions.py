"""The admin is view-only for everyone: auditors and superusers alike can read, nobody can write."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import pytest
from django.contrib.auth.models import Permission
from django.db.models import Model
from django.test import Client
from django.urls import reverse

from audit.admin.auditors import AUDITORS_GROUP
from embeddings.models import EmbeddingBacklog, IncidentEmbedding
from testutils.admin_rows import remediation_chain
from testutils.audit_rows import table_counts

pytestmark = pytest.mark.django_db

CLIENTS = ["auditor_client", "superuser_client"]


@pytest.fixture
def records() -> list[Model]:
    chain = remediation_chain()
    embedding = IncidentEmbedding.objects.get(audit_type="remediation", audit_id=chain["remediation"].id)
    backlog = EmbeddingBacklog.objects.create(
        audit_type="workflow",
        audit_id=chain["workflow"].id,
        audit_recorded_at=chain["workflow"].recorded_at,
        reason="test",
        created_at=chain["workflow"].recorded_at,
    )
    return [chain["remediation"], chain["aianalysis"], chain["workflow"], chain["executions"][0], embedding, backlog]


def _url(obj: Model, view: str) -> str:
    opts = obj._meta
    args = [] if view in ("changelist", "add") else [obj.pk]
    return reverse(f"admin:{opts.app_label}_{opts.model_name}_{view}", args=args)


def _post(client: Client, url: str, form: dict[str, Any]) -> Any:
    """A form as the admin's pages post them: urlencoded (multipart is refused before any view)."""
    return client.post(url, urlencode(form, doseq=True), content_type="application/x-www-form-urlencoded")


def _snapshot(obj: Model) -> dict[str, Any]:
    return type(obj)._default_manager.filter(pk=obj.pk).values().get()


@pytest.mark.parametrize("client_fixture", CLIENTS)
def test_everyone_can_view_every_list_and_record(request, client_fixture, records):
    client: Client = request.getfixturevalue(client_fixture)
    for obj in records:
        listing = client.get(_url(obj, "changelist"))
        assert listing.status_code == 200, obj
        page = client.get(_url(obj, "change"))
        assert page.status_code == 200, obj
        html = page.content.decode()
        assert 'name="_save"' not in html
        assert 'name="_continue"' not in html
        assert _url(obj, "delete") not in html
        assert f"View {obj._meta.verbose_name}" in html


@pytest.mark.parametrize("client_fixture", CLIENTS)
def test_lists_offer_no_add_button_and_no_bulk_actions(request, client_fixture, records):
    client: Client = request.getfixturevalue(client_fixture)
    for obj in records:
        html = client.get(_url(obj, "changelist")).content.decode()
        assert _url(obj, "add") not in html
        assert 'name="action"' not in html
        assert "action-checkbox" not in html


@pytest.mark.parametrize("client_fixture", CLIENTS)
def test_add_change_and_delete_are_refused_and_change_nothing(request, client_fixture, records):
    client: Client = request.getfixturevalue(client_fixture)
    before_counts = table_counts()
    for obj in records:
        before = _snapshot(obj)
        assert client.get(_url(obj, "add")).status_code == 403
        assert _post(client, _url(obj, "add"), {"name": "forged", "phase": "Completed"}).status_code == 403
        changed = _post(client, _url(obj, "change"), {"name": "tampered", "phase": "Failed", "_save": "Save"})
        assert changed.status_code == 403
        assert client.get(_url(obj, "delete")).status_code == 403
        assert _post(client, _url(obj, "delete"), {"post": "yes"}).status_code == 403
        # The bulk delete action, posted by hand: there are no actions, so nothing happens.
        bulk_delete = {"action": "delete_selected", "_selected_action": [obj.pk], "post": "yes"}
        _post(client, _url(obj, "changelist"), bulk_delete)
        assert _snapshot(obj) == before
    assert table_counts() == before_counts


def test_auditor_is_staff_only_in_the_auditors_group_with_view_permissions(auditor):
    assert auditor.is_staff
    assert auditor.is_active
    assert not auditor.is_superuser
    assert [group.name for group in auditor.groups.all()] == [AUDITORS_GROUP]
    permissions = auditor.get_all_permissions()
    view_permissions = Permission.objects.filter(
        content_type__app_label__in=["audit", "embeddings"], codename__startswith="view_"
    )
    assert permissions == {f"{p.content_type.app_label}.{p.codename}" for p in view_permissions}
    assert "audit.view_remediationaudit" in permissions
    assert "embeddings.view_incidentembedding" in permissions
    assert not any(p.split(".")[1].startswith(("add_", "change_", "delete_")) for p in permissions)


def test_auditor_cannot_see_users_or_groups(auditor_client):
    assert auditor_client.get(reverse("admin:auth_user_changelist")).status_code == 403
    assert auditor_client.get(reverse("admin:auth_group_changelist")).status_code == 403


def test_anonymous_visitors_are_sent_to_the_login_page(records):
    client = Client()
    for url in (_url(records[0], "changelist"), _url(records[0], "change"), reverse("audit-timeline", args=["c-1"])):
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("admin:login"))


def test_timeline_is_refused_to_staff_without_audit_view_permission(django_user_model, records):
    staff = django_user_model.objects.create_user("staff-no-perms", password="Staff-password-2026!", is_staff=True)
    client = Client()
    client.force_login(staff)
    assert client.get(reverse("audit-timeline", args=[records[0].correlation_id])).status_code == 403
