"""The admin shows auditors each record's seal (or that it is not sealed yet) and the seals."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.test import Client
from django.urls import reverse

from audit.models import AuditSeal
from testutils.admin_rows import remediation_chain
from testutils.integrity import key_files, seal_now

pytestmark = pytest.mark.django_db


def test_record_page_names_its_seal_and_the_seal_list_shows_it(auditor_client: Client, tmp_path: Path) -> None:
    chain = remediation_chain()
    record = chain["remediation"]
    page = reverse("admin:audit_remediationaudit_change", args=[record.id])
    assert "not yet sealed" in auditor_client.get(page).content.decode()

    private, _ = key_files(tmp_path / "keys")
    seal_now(private, tmp_path / "seals")
    seal = AuditSeal.objects.get(window_start__lte=record.recorded_at, window_end__gt=record.recorded_at)
    content = auditor_client.get(page).content.decode()
    assert f"seal {seal.sequence}</a>" in content
    assert reverse("admin:audit_auditseal_change", args=[seal.sequence]) in content

    listing = auditor_client.get(reverse("admin:audit_auditseal_changelist"))
    assert listing.status_code == 200
    assert seal.key_id in listing.content.decode()
    detail = auditor_client.get(reverse("admin:audit_auditseal_change", args=[seal.sequence]))
    assert detail.status_code == 200
    assert seal.root in detail.content.decode()


def test_seals_are_read_only_even_for_a_superuser(superuser_client: Client, tmp_path: Path) -> None:
    remediation_chain()
    private, _ = key_files(tmp_path / "keys")
    seal_now(private, tmp_path / "seals")
    seal = AuditSeal.objects.order_by("sequence")[0]
    assert superuser_client.get(reverse("admin:audit_auditseal_add")).status_code == 403
    response = superuser_client.post(
        reverse("admin:audit_auditseal_delete", args=[seal.sequence]),
        "post=yes",
        content_type="application/x-www-form-urlencoded",  # as the admin's pages post forms
    )
    assert response.status_code == 403
    assert AuditSeal.objects.filter(sequence=seal.sequence).exists()
