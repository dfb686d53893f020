"""`audit_seal` + `audit_verify` on the real database: clean history verifies clean, and every
kind of tampering a superuser can do is named precisely."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.db import IntegrityError, connection

from audit.models import AuditSeal, RemediationAudit
from embeddings.models import IncidentEmbedding
from kubernaut_integrity.keys import key_pair_write, private_key_load
from kubernaut_integrity.seals import seal_make
from testutils.admin_rows import remediation_chain
from testutils.integrity import findings_of, key_files, seal_now, triggers_bypassed, verify
from testutils.integrity_export import junk_leaves

pytestmark = pytest.mark.django_db


@pytest.fixture
def sealed(tmp_path: Path) -> dict[str, Any]:
    """Two remediation chains (10 audit rows, 10 embeddings), sealed."""
    private, public = key_files(tmp_path / "keys")
    seal_dir = tmp_path / "seals"
    chains = [remediation_chain(), remediation_chain()]
    made = seal_now(private, seal_dir)
    assert made
    assert sum(window.rows for window in made) == 20
    return {"private": private, "public": public, "seal_dir": seal_dir, "chains": chains}


def test_clean_history_verifies_clean(sealed: dict[str, Any]) -> None:
    clean, report = verify(sealed["public"], seal_dir=sealed["seal_dir"])
    assert clean, report["findings"]
    assert report["rows"] == 20
    assert report["seals"] == AuditSeal.objects.count() >= 1


def test_one_field_changed_is_named(sealed: dict[str, Any]) -> None:
    row = sealed["chains"][0]["remediation"]
    with triggers_bypassed() as cursor:
        cursor.execute("UPDATE audit_remediation SET phase = 'Failed' WHERE id = %s", [row.id])
    clean, report = verify(sealed["public"], seal_dir=sealed["seal_dir"])
    assert not clean
    assert {(kind, table, row_id) for kind, table, row_id, _ in findings_of(report)} == {
        ("row_modified", "audit_remediation", row.id)
    }


def _seal_with_rows(table: str = "audit_remediation") -> AuditSeal:
    return (
        AuditSeal.objects.filter(body__contains=f'"{table}":{{"count":')
        .exclude(body__contains=f'"{table}":{{"count":0,')
        .order_by("sequence")[0]
    )


def test_deleted_row_is_named(sealed: dict[str, Any]) -> None:
    row = sealed["chains"][1]["executions"][0]
    with triggers_bypassed() as cursor:
        cursor.execute("DELETE FROM audit_execution WHERE id = %s", [row.id])
    clean, report = verify(sealed["public"], seal_dir=sealed["seal_dir"])
    assert not clean
    assert {(kind, table, row_id) for kind, table, row_id, _ in findings_of(report)} == {
        ("row_deleted", "audit_execution", row.id)
    }


def test_forged_row_in_a_sealed_window_is_named(sealed: dict[str, Any]) -> None:
    original = sealed["chains"][0]["workflow"]
    columns = [f.column for f in type(original)._meta.concrete_fields if f.column != "id"]
    listed = ", ".join(columns)
    with triggers_bypassed() as cursor:
        cursor.execute(
            f"INSERT INTO audit_workflow ({listed}) SELECT {listed} FROM audit_workflow WHERE id = %s RETURNING id",
            [original.id],
        )
        forged = cursor.fetchone()[0]
    clean, report = verify(sealed["public"], seal_dir=sealed["seal_dir"])
    assert not clean
    assert {(kind, table, row_id) for kind, table, row_id, _ in findings_of(report)} == {
        ("row_inserted", "audit_workflow", forged)
    }


def test_the_database_refuses_a_row_in_a_sealed_window(sealed: dict[str, Any]) -> None:
    """Without the superuser's bypass the trigger keeps even the owner out of sealed windows."""
    original = sealed["chains"][0]["workflow"]
    columns = ", ".join(f.column for f in type(original)._meta.concrete_fields if f.column != "id")
    with pytest.raises(IntegrityError, match="sealed window"), connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO audit_workflow ({columns}) SELECT {columns} FROM audit_workflow WHERE id = %s", [original.id]
        )


def test_deleted_seal_is_named(sealed: dict[str, Any]) -> None:
    last = AuditSeal.objects.order_by("-sequence")[0].sequence
    assert last >= 3
    middle = last - 1
    with triggers_bypassed() as cursor:
        cursor.execute("DELETE FROM audit_seals WHERE sequence = %s", [middle])
    clean, report = verify(sealed["public"], seal_dir=sealed["seal_dir"])
    assert not clean
    kinds = {(kind, seal) for kind, _, _, seal in findings_of(report)}
    assert ("seal_missing", last) in kinds  # the chain's gap, seen from the next seal
    assert ("seal_missing", middle) in kinds  # its copy outside the database names it
    assert {seal for _, seal in kinds} == {middle, last}


def test_altered_root_is_named(sealed: dict[str, Any]) -> None:
    target = _seal_with_rows()
    body = json.loads(target.body)
    body["tables"]["audit_remediation"]["root"] = "f" * 64
    with triggers_bypassed() as cursor:
        cursor.execute(
            "UPDATE audit_seals SET body = %s WHERE sequence = %s",
            [json.dumps(body, sort_keys=True, separators=(",", ":")), target.sequence],
        )
    clean, report = verify(sealed["public"], seal_dir=sealed["seal_dir"])
    assert not clean
    found = {(kind, seal) for kind, _, _, seal in findings_of(report)}
    # The seal log's leaf is the body: its stored hashes, and those of the seals completing a
    # subtree over it, no longer match it.
    leaf = [
        f["detail"] for f in report["findings"] if (f["kind"], f["seal"]) == ("log_hashes_mismatch", target.sequence)
    ]
    assert leaf == ["its body is not the one the seal log holds (leaf hash differs)"]
    assert {(kind, seal) for kind, seal in found if kind != "log_hashes_mismatch"} == {
        ("seal_bad_signature", target.sequence),
        ("seal_anchor_mismatch", target.sequence),
        ("seal_chain_broken", target.sequence + 1),
    }


def test_seal_re_signed_with_an_untrusted_key_is_named(sealed: dict[str, Any], tmp_path: Path) -> None:
    target = _seal_with_rows()
    mallory, _, _ = key_pair_write(tmp_path / "mallory")
    body = json.loads(target.body)
    body["tables"]["audit_remediation"]["root"] = "0" * 64
    forged = seal_make(
        sequence=body["sequence"],
        window_start=body["window"]["start"],
        window_end=body["window"]["end"],
        tables=body["tables"],
        previous=body["previous"],
        sealed_at=body["sealed_at"],
        private_key=private_key_load(mallory),
    )
    with triggers_bypassed() as cursor:
        cursor.execute(
            "UPDATE audit_seals SET body = %s, signature = %s WHERE sequence = %s",
            [forged.body_bytes.decode(), forged.signature, target.sequence],
        )
    clean, report = verify(sealed["public"], seal_dir=sealed["seal_dir"])
    assert not clean
    kinds = {(kind, seal) for kind, _, _, seal in findings_of(report)}
    assert ("seal_unknown_key", target.sequence) in kinds
    assert ("seal_anchor_mismatch", target.sequence) in kinds
    assert {seal for _, seal in kinds} <= {target.sequence, target.sequence + 1}


def test_window_removed_with_its_seal_is_named(sealed: dict[str, Any]) -> None:
    target = _seal_with_rows()
    window_rows = list(
        RemediationAudit.objects.filter(recorded_at__gte=target.window_start, recorded_at__lt=target.window_end)
    )
    embeddings = list(
        IncidentEmbedding.objects.filter(recorded_at__gte=target.window_start, recorded_at__lt=target.window_end)
    )
    assert window_rows
    with triggers_bypassed() as cursor:
        for table in (
            "audit_remediation",
            "audit_aianalysis",
            "audit_workflow",
            "audit_execution",
            "incident_embeddings",
        ):
            cursor.execute(
                f"DELETE FROM {table} WHERE recorded_at >= %s AND recorded_at < %s",
                [target.window_start, target.window_end],
            )
        cursor.execute("DELETE FROM audit_seals WHERE sequence = %s", [target.sequence])
    clean, report = verify(sealed["public"], seal_dir=sealed["seal_dir"])
    assert not clean
    found = findings_of(report)
    assert ("seal_missing", None, None, target.sequence) in found
    deleted = {(table, row_id) for kind, table, row_id, _ in found if kind == "row_deleted"}
    assert {("audit_remediation", row.id) for row in window_rows} <= deleted
    assert {("incident_embeddings", row.id) for row in embeddings} <= deleted


def test_seal_removed_everywhere_still_leaves_a_gap(sealed: dict[str, Any]) -> None:
    """Without the copy outside the database the chain itself still shows the hole."""
    last = AuditSeal.objects.order_by("-sequence")[0].sequence
    with triggers_bypassed() as cursor:
        cursor.execute("DELETE FROM audit_seals WHERE sequence = %s", [last - 1])
    (sealed["seal_dir"] / f"seal-{last - 1:012d}.json").unlink()
    clean, report = verify(sealed["public"], seal_dir=sealed["seal_dir"])
    assert not clean
    assert ("seal_missing", None, None, last) in findings_of(report)


def test_first_seal_deleted_everywhere_is_named(sealed: dict[str, Any]) -> None:
    with triggers_bypassed() as cursor:
        cursor.execute("DELETE FROM audit_seals WHERE sequence = 1")
    (sealed["seal_dir"] / "seal-000000000001.json").unlink()
    clean, report = verify(sealed["public"], seal_dir=sealed["seal_dir"])
    assert not clean
    assert ("seal_missing", None, None, 2) in findings_of(report)


# --- seal files as hostile input ------------------------------------------------------------------


def _seal_file_of(sealed: dict[str, Any], seal: AuditSeal) -> Path:
    path: Path = sealed["seal_dir"] / f"seal-{seal.sequence:012d}.json"
    return path


def _leaves_replaced(text_of: Callable[[int], str]) -> Callable[[Path, AuditSeal], None]:
    def attack(path: Path, seal: AuditSeal) -> None:
        document = json.loads(path.read_text())
        count = json.loads(seal.body)["tables"]["audit_remediation"]["count"]
        document["leaves"]["audit_remediation"] = text_of(count)
        path.write_text(json.dumps(document, indent=1))

    return attack


def _member_dropped(member: str) -> Callable[[Path, AuditSeal], None]:
    def attack(path: Path, seal: AuditSeal) -> None:
        document = json.loads(path.read_text())
        del document[member]
        path.write_text(json.dumps(document, indent=1))

    return attack


def _bad_name(path: Path, seal: AuditSeal) -> None:
    (path.parent / "seal-latest.json").write_bytes(path.read_bytes())


def _deep(path: Path, seal: AuditSeal) -> None:
    path.write_text("[" * 100_000 + "]" * 100_000)


SEAL_FILE_ATTACKS = {
    # attack: (how, what the seal_malformed finding says)
    "a name that is not seal-<12 digits>.json": (_bad_name, "seal-latest.json: not a seal file name"),
    "no signature": (_member_dropped("signature"), "not a seal file"),
    "leaves that are not base64": (_leaves_replaced(lambda count: "*" * 8), "leaves refused: not base64"),
    "leaves that are not whole": (_leaves_replaced(lambda count: "AAAA"), "3 bytes are not whole leaves"),
    "nested JSON a hundred thousand deep": (_deep, "not a seal file"),
    "megabytes of junk leaves": (_leaves_replaced(lambda count: junk_leaves(100_000)), "leaves refused: more than"),
    "junk leaves of the right count": (_leaves_replaced(junk_leaves), "leaves do not rebuild its root"),
}


@pytest.mark.parametrize("attack", SEAL_FILE_ATTACKS.keys())
def test_a_malformed_seal_file_is_a_finding(attack: str, sealed: dict[str, Any]) -> None:
    make, detail = SEAL_FILE_ATTACKS[attack]
    target = _seal_with_rows()
    make(_seal_file_of(sealed, target), target)
    clean, report = verify(sealed["public"], seal_dir=sealed["seal_dir"])
    assert not clean
    malformed = [finding for finding in report["findings"] if finding["kind"] == "seal_malformed"]
    assert malformed, report["findings"]
    assert all(detail in finding["detail"] for finding in malformed), malformed
    # The rows themselves are intact: the seal still stands (from the database), nothing else is found.
    assert {finding["kind"] for finding in report["findings"]} <= {"seal_malformed", "seal_anchor_mismatch"}


def test_a_malformed_seal_in_the_database_is_a_finding(sealed: dict[str, Any]) -> None:
    target = _seal_with_rows()
    with triggers_bypassed() as cursor:
        cursor.execute("UPDATE audit_seals SET body = '[]' WHERE sequence = %s", [target.sequence])
    clean, report = verify(sealed["public"], seal_dir=sealed["seal_dir"])
    assert not clean
    found = findings_of(report)
    assert ("seal_malformed", None, None, None) in found
    assert ("seal_anchor_mismatch", None, None, target.sequence) in found
    # The copy outside the database is intact and signed: the window's rows are checked against it.
    assert not {kind for kind, *_ in found} & {"row_modified", "row_deleted", "row_inserted", "window_mismatch"}


@pytest.mark.django_db(transaction=True)
def test_parallel_connections_see_one_snapshot_and_find_a_changed_row(tmp_path: Path) -> None:
    """Committed history (the workers' connections cannot see a test's open transaction): the
    rows hashed on two connections in the run's snapshot verify clean, and a changed row is
    named as on one connection."""
    private, public = key_files(tmp_path / "keys")
    chains = [remediation_chain(), remediation_chain()]
    assert seal_now(private, tmp_path / "seals")
    clean, report = verify(public, seal_dir=tmp_path / "seals", extra=("--parallel", "2"))
    assert clean, report["findings"]
    assert report["rows"] == 20

    row = chains[1]["workflow"]
    with triggers_bypassed() as cursor:
        cursor.execute("UPDATE audit_workflow SET workflow_name = 'other' WHERE id = %s", [row.id])
    for workers in ("1", "2"):
        clean, report = verify(public, seal_dir=tmp_path / "seals", extra=("--parallel", workers))
        assert not clean
        assert {(kind, table, row_id) for kind, table, row_id, _ in findings_of(report)} == {
            ("row_modified", "audit_workflow", row.id)
        }
