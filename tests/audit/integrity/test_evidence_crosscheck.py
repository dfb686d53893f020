"""Independent implementations agree on a real evidence bundle: Go's reference code
(golang.org/x/mod/sumdb/note and .../tlog) checks its checkpoints (log signature, witness
cosignature, format), every seal's inclusion proof in the seal log and every checkpoint's
consistency proof, and every record's inclusion proof in its window's table tree, and rebuilds
the same trees and proofs from the leaves; `openssl ts -verify` checks its RFC 3161 tokens."""

from __future__ import annotations

import base64
import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from kubernaut_integrity.canonical import row_hash
from kubernaut_integrity.checkpoint import checkpoint_parse
from kubernaut_integrity.note import note_parse
from kubernaut_integrity.seals import Seal
from testutils.evidence import EvidenceCase
from testutils.go_crosscheck import b64, crosscheck_run
from testutils.tsa import TimestampAuthority

pytestmark = pytest.mark.django_db


def _checkpoint(note: str) -> tuple[int, str]:
    checkpoint = checkpoint_parse(note_parse(note.encode()).text)
    return checkpoint.size, b64(checkpoint.root)


def test_go_checks_a_real_bundle_s_checkpoints_and_seal_log_proofs(
    evidence_case: EvidenceCase, go_crosscheck: Path
) -> None:
    bundle = json.loads(evidence_case.bundle)
    history = evidence_case.history
    assert history.witness is not None
    leaves = [body.encode() for body in evidence_case.log_bodies]
    latest_size, latest_root = _checkpoint(bundle["checkpoints"][-1]["note"])
    document: dict[str, Any] = {
        "leaves": [b64(leaf) for leaf in leaves],
        "checkpoints": [
            {
                "note": entry["note"],
                "log_vkeys": [history.log_vkey.read_text().strip()],
                "witness_vkeys": [history.witness.verifier.vkey],
            }
            for entry in bundle["checkpoints"]
        ],
        "inclusion": [
            {
                "index": Seal(entry["body"].encode(), b"").body["sequence"] - 1,
                "size": latest_size,
                "root": latest_root,
                "proof": entry["proof"],
            }
            for entry in bundle["seals"]
        ],
        "consistency": [
            {
                "old_size": _checkpoint(entry["note"])[0],
                "old_root": _checkpoint(entry["note"])[1],
                "new_size": latest_size,
                "new_root": latest_root,
                "proof": entry["proof"],
            }
            for entry in bundle["checkpoints"][:-1]
        ],
    }
    status, verdicts = crosscheck_run(go_crosscheck, document)
    assert status == 0, verdicts
    assert len(verdicts["checkpoints"]) == len(bundle["checkpoints"]) >= 2
    assert all(verdict["verdict"] == "ok" for verdict in verdicts["checkpoints"])
    witness_key = f"{history.witness.verifier.name}+{history.witness.verifier.key_hash:08x}"
    assert witness_key in verdicts["checkpoints"][-1]["signed_by"]
    assert verdicts["inclusion"] == ["ok"] * len(bundle["seals"])
    assert verdicts["consistency"] == ["ok"] * (len(bundle["checkpoints"]) - 1)


def test_go_checks_a_real_bundle_s_record_proofs(evidence_case: EvidenceCase, go_crosscheck: Path) -> None:
    """Per table and seal, Go rebuilds the window's tree from its row hashes (leaf = row hash)."""
    bundle = json.loads(evidence_case.bundle)
    seals = {body["sequence"]: body for body in (Seal(entry["body"].encode(), b"").body for entry in bundle["seals"])}
    parts: dict[tuple[int, str], list[dict[str, Any]]] = defaultdict(list)
    for record in bundle["records"]:
        row = json.loads(record["line"])
        sequence = next(
            number
            for number, body in seals.items()
            if body["window"]["start"] <= row["recorded_at"] < body["window"]["end"]
        )
        parts[sequence, row["table"]].append(record)
    assert len(parts) >= 8  # four tables in each of two seals
    for (sequence, table), records in parts.items():
        leaves = evidence_case.window_leaves[sequence, table]
        part = seals[sequence]["tables"][table]
        document = {
            "leaves": [b64(digest) for digest in leaves],
            "checkpoints": [],
            "inclusion": [
                {
                    "index": record["index"],
                    "size": part["count"],
                    "root": b64(bytes.fromhex(part["root"])),
                    "proof": record["proof"],
                }
                for record in records
            ],
            "consistency": [],
        }
        assert [leaves[record["index"]] for record in records] == [row_hash(record["line"]) for record in records]
        status, verdicts = crosscheck_run(go_crosscheck, document)
        assert status == 0, (sequence, table, verdicts)
        assert verdicts["inclusion"] == ["ok"] * len(records)


def test_openssl_verifies_the_bundle_s_tokens(
    evidence_case: EvidenceCase, time_stamp_authority: TimestampAuthority
) -> None:
    bundle = json.loads(evidence_case.bundle)
    bodies = {
        _checkpoint(entry["note"])[0]: note_parse(entry["note"].encode()).text.encode()
        for entry in bundle["checkpoints"]
    }
    assert len(bundle["anchors"]) >= 2
    for anchor in bundle["anchors"]:
        token = base64.b64decode(anchor["token"])
        body = bodies[anchor["checkpoint"]]
        done = time_stamp_authority.openssl_verify(token, body)
        assert done.returncode == 0, done.stderr
        assert b"Verification: OK" in done.stdout
        assert time_stamp_authority.openssl_verify(token, body.replace(b"\n", b"\n\n", 1)).returncode != 0
