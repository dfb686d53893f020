"""The Django-free core: RFC 6962 Merkle roots, the canonical row form, seal signatures."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from kubernaut_integrity.canonical import FormError, row_canonical, timestamp_canonical, vector_canonical
from kubernaut_integrity.merkle import merkle_root
from kubernaut_integrity.seals import key_pair_write, private_key_load, public_keys_load, seal_make, table_entry


def _rfc6962(entries: list[bytes]) -> bytes:
    """The definition of RFC 6962 section 2.1, recursively."""
    if not entries:
        return hashlib.sha256(b"").digest()
    if len(entries) == 1:
        return hashlib.sha256(b"\x00" + entries[0]).digest()
    split = 1
    while split * 2 < len(entries):
        split *= 2
    return hashlib.sha256(b"\x01" + _rfc6962(entries[:split]) + _rfc6962(entries[split:])).digest()


@pytest.mark.parametrize("count", [0, 1, 2, 3, 4, 5, 7, 8, 9, 13, 64, 100])
def test_merkle_root_is_rfc_6962(count: int) -> None:
    entries = [hashlib.sha256(str(i).encode()).digest() for i in range(count)]
    assert merkle_root(entries) == _rfc6962(entries)


def test_empty_tree_is_the_hash_of_nothing() -> None:
    assert merkle_root([]).hex() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


def _embedding_row(**overrides: object) -> dict[str, object]:
    row: dict[str, object] = {
        "id": 7,
        "audit_type": "remediation",
        "audit_id": 3,
        "audit_recorded_at": "2026-12-02T10:00:00.5+00:00",
        "remediation_request_id": "rr",
        "namespace": "ns",
        "target_type": "",
        "target_name": "",
        "signal_type": "",
        "root_cause": "é",
        "model": "m",
        "dimensions": 2,
        "input_sha256": "0" * 64,
        "embedding": "[0.5,-1]",
        "recorded_at": "2026-12-02T11:00:00+01:00",
    }
    row.update(overrides)
    return row


def test_canonical_form_is_exact() -> None:
    canonical = row_canonical("incident_embeddings", _embedding_row(extra_column="ignored"))
    assert (
        canonical
        == (
            '{"form":1,"row":{"audit_id":3,"audit_recorded_at":"2026-12-02T10:00:00.500000Z","audit_type":"remediation",'
            '"dimensions":2,"embedding":"0000003f000080bf","id":7,"input_sha256":"' + "0" * 64 + '","model":"m",'
            '"namespace":"ns","recorded_at":"2026-12-02T10:00:00.000000Z","remediation_request_id":"rr",'
            '"root_cause":"é","signal_type":"","target_name":"","target_type":""},"table":"incident_embeddings"}'
        ).encode()
    )
    # The archives write the vector as an array, the database as pgvector text: same bytes.
    assert row_canonical("incident_embeddings", _embedding_row(embedding=[0.5, -1.0])) == canonical


def test_canonical_form_refuses_a_row_without_a_column() -> None:
    row = _embedding_row()
    del row["model"]
    with pytest.raises(FormError, match="model"):
        row_canonical("incident_embeddings", row)


def test_timestamps_and_vectors() -> None:
    assert timestamp_canonical("2026-12-02T13:00:00.123456+00:00") == "2026-12-02T13:00:00.123456Z"
    assert timestamp_canonical("2026-12-02T15:00:00-02:00") == "2026-12-02T17:00:00.000000Z"
    with pytest.raises(FormError):
        timestamp_canonical("2026-12-02T15:00:00")
    assert vector_canonical([1.0]) == "0000803f"


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
