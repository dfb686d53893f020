"""Seals: Ed25519 signatures over the exact body bytes, a set of trusted keys for a rotation, and
bodies checked member by member before anything reads them."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from kubernaut_integrity.canonical import FORM_TABLES, SEALED_TABLES
from kubernaut_integrity.keys import key_pair_write, private_key_load, public_keys_load
from kubernaut_integrity.seals import MalformedSealError, body_parse, seal_make, seal_tables, table_entry


def test_seal_signature_and_key_rotation(tmp_path: Path) -> None:
    first, first_public, first_id = key_pair_write(tmp_path / "a")
    _, second_public, _ = key_pair_write(tmp_path / "b")
    tables = {table: table_entry([], []) for table in SEALED_TABLES}
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


def _body(**changes: object) -> bytes:
    body: dict[str, object] = {
        "format": "kubernaut-audit-seal/1",
        "form": 2,
        "sequence": 3,
        "window": {"start": "2026-12-02T13:00:00.000000Z", "end": "2026-12-02T13:01:00.000000Z"},
        "tables": {table: table_entry([], []) for table in SEALED_TABLES},
        "root": "0" * 64,
        "previous": "1" * 64,
        "key_id": "ed25519:" + "2" * 64,
        "sealed_at": "2026-12-02T13:02:00.000000Z",
    }
    body.update(changes)
    return json.dumps(body).encode()


MALFORMED_BODIES = {
    "not JSON": (b"{", "unreadable seal body", None),
    "a list": (b"[]", "not a JSON object", None),
    "no sequence": (_body(sequence=None), "sequence None", None),
    "a sequence as text": (_body(sequence="3"), "sequence 3", None),
    "another format": (_body(format="kubernaut-audit-seal/2"), "format kubernaut-audit-seal/2 form 2 unknown", 3),
    "a control character in the format": (_body(format="\x1b[2J"), "format \\x1b[2J form 2 unknown", 3),
    "a window without an end": (_body(window={"start": "2026-12-02T13:00:00.000000Z"}), "window", 3),
    "a local time": (_body(window={"start": "2026-12-02 13:00", "end": "2026-12-02 13:01"}), "window", 3),
    "a table missing": (_body(tables={"audit_remediation": table_entry([], [])}), "the tables are not", 3),
    "a count as text": (
        _body(tables={table: {"count": "0", "root": "0" * 64, "partitions": []} for table in SEALED_TABLES}),
        "is not a count, a root and partitions",
        3,
    ),
    "a short previous": (_body(previous="00"), "previous is not a SHA-256", 3),
    "a form not made yet": (_body(form=3), "form 3 unknown", 3),
    "a form as text": (_body(form="2"), "form 2 unknown", 3),
    "form 1 with the events table": (_body(form=1), "the tables are not", 3),
    "form 2 without it": (
        _body(tables={table: table_entry([], []) for table in FORM_TABLES[1]}),
        "the tables are not",
        3,
    ),
    "a key id of any length": (_body(key_id="k" * 10_000), "key_id is not", 3),
}


@pytest.mark.parametrize("case", MALFORMED_BODIES.keys())
def test_a_malformed_body_is_refused_with_its_reason(case: str) -> None:
    body, reason, sequence = MALFORMED_BODIES[case]
    with pytest.raises(MalformedSealError, match=re.escape(reason)) as refused:
        body_parse(body)
    assert refused.value.sequence == sequence


def test_a_well_formed_body_is_read() -> None:
    assert body_parse(_body())["sequence"] == 3


def test_a_form_1_body_made_before_the_events_table_is_read() -> None:
    body = body_parse(_body(form=1, tables={table: table_entry([], []) for table in FORM_TABLES[1]}))
    assert seal_tables(body) == FORM_TABLES[1]
    assert seal_tables(body_parse(_body())) == (*FORM_TABLES[1], "audit_events")
