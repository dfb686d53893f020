"""Audit events are sealed like the typed records, in canonical form 2; seals made in form 1,
before the events existed, keep verifying beside them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.test import Client

from audit.integrity import sealing
from audit.models import AuditEvent, AuditSeal
from kubernaut_integrity import canonical, seals
from testutils.admin_rows import remediation_chain
from testutils.events import event_batch, post_events
from testutils.evidence import next_window
from testutils.integrity import findings_of, key_files, seal_now, triggers_bypassed, verify

pytestmark = pytest.mark.django_db

EVENT_TYPES = ["gateway.signal.received", "aiagent.llm.request", "workflowexecution.workflow.started"]


def _events_posted(api: Client) -> list[str]:
    response = post_events(api, event_batch(EVENT_TYPES))
    assert response.status_code == 201, response.content
    ids: list[str] = response.json()["event_ids"]
    return ids


def _form_1_sealing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Seal as the service did before audit_events existed: form 1, five tables."""
    monkeypatch.setattr(seals, "FORM_VERSION", 1)
    monkeypatch.setattr(seals, "SEALED_TABLES", canonical.FORM_TABLES[1])
    monkeypatch.setattr(sealing, "SEALED_TABLES", canonical.FORM_TABLES[1])


def test_events_are_sealed_and_a_changed_payload_is_named(api: Client, tmp_path: Path) -> None:
    private, public = key_files(tmp_path / "keys")
    seal_dir = tmp_path / "seals"
    event_ids = _events_posted(api)

    made = seal_now(private, seal_dir)

    assert sum(window.rows for window in made) == len(EVENT_TYPES)
    body = json.loads(AuditSeal.objects.order_by("-sequence")[0].body)
    assert body["form"] == 2
    assert list(body["tables"]) == sorted(canonical.FORM_TABLES[2])
    clean, report = verify(public, seal_dir=seal_dir)
    assert clean, report["findings"]
    assert report["rows"] == len(EVENT_TYPES)

    row = AuditEvent.objects.get(event_id=event_ids[1])
    with triggers_bypassed() as cursor:
        cursor.execute(
            'UPDATE audit_events SET event_data = event_data || \'{"model": "other"}\' WHERE id = %s', [row.id]
        )
    clean, report = verify(public, seal_dir=seal_dir)
    assert not clean
    assert {(kind, table, row_id) for kind, table, row_id, _ in findings_of(report)} == {
        ("row_modified", "audit_events", row.id)
    }


@pytest.mark.real_clock
def test_form_1_seals_keep_verifying_beside_form_2_seals(
    api: Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    private, public = key_files(tmp_path / "keys")
    seal_dir = tmp_path / "seals"
    remediation_chain()
    next_window()
    with monkeypatch.context() as patched:
        _form_1_sealing(patched)
        assert seal_now(private, seal_dir, ahead_seconds=0)
    old = json.loads(AuditSeal.objects.order_by("-sequence")[0].body)
    assert (old["form"], len(old["tables"])) == (1, 5)

    _events_posted(api)
    remediation_chain()
    seal_now(private, seal_dir)

    forms = {json.loads(seal.body)["form"] for seal in AuditSeal.objects.all()}
    assert forms == {1, 2}
    clean, report = verify(public, seal_dir=seal_dir)
    assert clean, report["findings"]
    assert report["rows"] == 20 + len(EVENT_TYPES)


@pytest.mark.real_clock
def test_an_event_forged_into_a_form_1_window_is_named(
    api: Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    private, public = key_files(tmp_path / "keys")
    seal_dir = tmp_path / "seals"
    chain = remediation_chain()
    next_window()
    with monkeypatch.context() as patched:
        _form_1_sealing(patched)
        assert seal_now(private, seal_dir, ahead_seconds=0)
    _events_posted(api)
    forged = AuditEvent.objects.order_by("id")[0]
    with triggers_bypassed() as cursor:
        cursor.execute(
            "UPDATE audit_events SET recorded_at = %s WHERE id = %s", [chain["remediation"].recorded_at, forged.id]
        )
    clean, report = verify(public, seal_dir=seal_dir, extra=("--to", "2999-01-01T00:00:00Z"))
    assert not clean
    assert ("row_inserted", "audit_events", forged.id) in {
        (kind, table, row_id) for kind, table, row_id, _ in findings_of(report)
    }
