"""The Django-free core: RFC 6962 Merkle roots, the canonical row form, seal signatures."""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path

import pytest
from django.db import connection

from audit.integrity.sealed_rows import canonical_settings
from kubernaut_integrity.canonical import FormError, canonical_sql, line_identity, row_hash, timestamp_canonical
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


@pytest.mark.django_db
def test_canonical_form_is_exact() -> None:
    """The form as docs/INTEGRITY.md states it, byte for byte, whatever the session's time zone."""
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL TimeZone = 'America/New_York'")
        cursor.execute(
            "INSERT INTO incident_embeddings (audit_type, audit_id, audit_recorded_at, remediation_request_id,"
            " namespace, target_type, target_name, signal_type, root_cause, model, dimensions, input_sha256,"
            " embedding, recorded_at) VALUES ('remediation', 3, '2026-12-02T10:00:00.5Z', 'rr', 'ns', '', '',"
            " '', %s, 'm', 2, %s, '[0.5,-1]', '2026-12-02T11:00:00+01:00') RETURNING id",
            ['é "quoted"\n', "0" * 64],
        )
        row_id = cursor.fetchone()[0]
        canonical_settings(cursor)
        cursor.execute(
            f"SELECT {canonical_sql('incident_embeddings')} FROM incident_embeddings p WHERE id = %s", [row_id]
        )
        line = cursor.fetchone()[0]
    assert line == (
        f'{{"form" : 1, "table" : "incident_embeddings", "id" : {row_id}, "audit_type" : "remediation",'
        ' "audit_id" : 3, "audit_recorded_at" : "2026-12-02T10:00:00.500000Z", "remediation_request_id" : "rr",'
        ' "namespace" : "ns", "target_type" : "", "target_name" : "", "signal_type" : "",'
        ' "root_cause" : "é \\"quoted\\"\\n", "model" : "m", "dimensions" : 2, "input_sha256" : "'
        + "0" * 64
        + '", "embedding" : "[0.5,-1]", "recorded_at" : "2026-12-02T10:00:00.000000Z"}'
    )
    assert line_identity(line) == (row_id, "2026-12-02T10:00:00.000000Z")
    assert row_hash(line) == hashlib.sha256(line.encode()).digest()


def test_a_line_of_another_form_is_refused() -> None:
    with pytest.raises(FormError):
        line_identity('{"form" : 2, "id" : 1, "recorded_at" : "2026-12-02T10:00:00.000000Z"}')


def test_timestamps() -> None:
    moment = dt.datetime(2026, 12, 2, 15, 0, tzinfo=dt.timezone(dt.timedelta(hours=-2)))
    assert timestamp_canonical(moment) == "2026-12-02T17:00:00.000000Z"
    with pytest.raises(FormError):
        timestamp_canonical(dt.datetime(2026, 12, 2))


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
