"""Seals: Ed25519 signatures over the exact body bytes, a set of trusted keys for a rotation."""

from __future__ import annotations

from pathlib import Path

from kubernaut_integrity.keys import key_pair_write, private_key_load, public_keys_load
from kubernaut_integrity.seals import seal_make, table_entry


def test_seal_signature_and_key_rotation(tmp_path: Path) -> None:
    first, first_public, first_id = key_pair_write(tmp_path / "a")
    _, second_public, _ = key_pair_write(tmp_path / "b")
    tables = {
        table: table_entry([], [])
        for table in (
            "audit_remediation",
            "audit_aianalysis",
            "audit_workflow",
            "audit_execution",
            "incident_embeddings",
        )
    }
    seal = seal_make(
        sequence=1,
        window_start="2026-12-02T13:00:00.000000Z",
        window_end="2026-12-02T13:01:00.000000Z",
        tables=tables,
        previous="0" * 64,
        sealed_at="2026-12-02T13:02:00.000000Z",
        private_key=private_key_load(first),
    )
    assert seal.body["key_id"] == first_id
    assert seal.signature_check(public_keys_load([first_public, second_public])) is None
    assert "unknown key" in (seal.signature_check(public_keys_load([second_public])) or "")
    tampered = type(seal)(seal.body_bytes.replace(b'"count":0', b'"count":1', 1), seal.signature)
    assert "bad signature" in (tampered.signature_check(public_keys_load([first_public])) or "")
