"""Independent implementations agree: Go's reference code (golang.org/x/mod/sumdb/note and
.../tlog, Debian's golang-go and golang-golang-x-mod-dev) checks our checkpoints, cosignatures,
inclusion and consistency proofs, and rebuilds the same tree and proofs from the leaves.

The Go program (go_crosscheck/main.go, built by testutils/go_crosscheck.py, the `go_crosscheck`
fixture) is built offline against Debian's copy of the module. A machine without Go fails this
test: it is never skipped (scripts/test installs both packages). A real evidence bundle's
checkpoints and proofs go through it too (tests/audit/integrity/test_evidence_crosscheck.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from kubernaut_integrity.checkpoint import Checkpoint, checkpoint_sign
from kubernaut_integrity.cosignature import Cosigner
from kubernaut_integrity.note import Ed25519Signer, Note, Signature, note_sign, note_with_signatures, signer_generate
from kubernaut_integrity.seals import seal_body_json
from kubernaut_integrity.tlog import MemoryLog, consistency_proof, inclusion_proof, tree_hash
from testutils.go_crosscheck import b64, crosscheck_run

ORIGIN = "audit.example/kubernaut"
SIZES = (1, 2, 7, 8, 20, 37)


class _Fixture:
    """A log of 37 seal bodies, signed checkpoints (the last by two log keys and a witness),
    every inclusion proof at each checkpoint size and every consistency proof between them."""

    def __init__(self) -> None:
        self.seals = [seal_body_json({"format": "kubernaut-audit-seal/1", "sequence": n, "root": "ab" * 32})
                      for n in range(1, 38)]  # fmt: skip
        self.log = MemoryLog()
        self.log.extend(self.seals)
        self.key, self.next_key = signer_generate(ORIGIN), signer_generate(ORIGIN)
        self.witness = Cosigner(name="witness.example/w1", private_key=Ed25519PrivateKey.generate())
        self.roots = {size: tree_hash(size=size, read=self.log.read) for size in range(38)}

    def checkpoint_note(self, size: int, signers: list[Ed25519Signer]) -> str:
        note = checkpoint_sign(Checkpoint(origin=ORIGIN, size=size, root=self.roots[size]), signers)
        return note.encode().decode()

    def document(self) -> dict[str, Any]:
        last = checkpoint_sign(Checkpoint(origin=ORIGIN, size=37, root=self.roots[37]), [self.key, self.next_key])
        cosigned = note_with_signatures(last, note_sign(last.text, [self.witness]).signatures)
        checkpoints = [
            {"note": self.checkpoint_note(size, [self.key]), "log_vkeys": [self.key.verifier.vkey], "witness_vkeys": []}
            for size in SIZES[:-1]
        ]
        checkpoints.append({
            "note": cosigned.encode().decode(),
            "log_vkeys": [self.key.verifier.vkey, self.next_key.verifier.vkey],
            "witness_vkeys": [self.witness.verifier.vkey],
        })  # fmt: skip
        inclusion = [
            {"index": index, "size": size, "root": b64(self.roots[size]),
             "proof": [b64(h) for h in inclusion_proof(index=index, size=size, read=self.log.read)]}
            for size in SIZES for index in range(size)
        ]  # fmt: skip
        consistency = [
            {"old_size": old, "old_root": b64(self.roots[old]), "new_size": new, "new_root": b64(self.roots[new]),
             "proof": [b64(h) for h in consistency_proof(old_size=old, new_size=new, read=self.log.read)]}
            for new in SIZES for old in range(1, new + 1)
        ]  # fmt: skip
        return {
            "leaves": [b64(seal) for seal in self.seals],
            "checkpoints": checkpoints,
            "inclusion": inclusion,
            "consistency": consistency,
        }


def test_go_verifies_our_checkpoints_cosignatures_and_proofs(go_crosscheck: Path) -> None:
    fixture = _Fixture()
    document = fixture.document()
    status, verdicts = crosscheck_run(go_crosscheck, document)
    assert status == 0, verdicts
    assert [v["verdict"] for v in verdicts["checkpoints"]] == ["ok"] * len(SIZES)
    assert [v["size"] for v in verdicts["checkpoints"]] == list(SIZES)
    assert [v["go_root"] for v in verdicts["checkpoints"]] == [b64(fixture.roots[size]) for size in SIZES]
    keys = [f"{signer.name}+{signer.key_hash:08x}" for signer in (fixture.key, fixture.next_key, fixture.witness)]
    assert verdicts["checkpoints"][0]["signed_by"] == keys[:1]
    assert sorted(verdicts["checkpoints"][-1]["signed_by"]) == sorted(keys)
    assert verdicts["inclusion"] == ["ok"] * len(document["inclusion"])
    assert verdicts["consistency"] == ["ok"] * len(document["consistency"])


def test_go_refuses_what_was_changed(go_crosscheck: Path) -> None:
    fixture = _Fixture()
    document = fixture.document()
    honest = fixture.checkpoint_note(20, [fixture.key])
    cosigned = note_sign(honest.split("\n\n")[0] + "\n", [fixture.key, fixture.witness])
    late = cosigned.signatures[1]
    later = Signature(name=late.name, key_hash=late.key_hash, signature=bytes([1]) + late.signature[1:])
    recosigned = Note(text=cosigned.text, signatures=(cosigned.signatures[0], later))
    document["checkpoints"] = [
        {"note": honest.replace("\n20\n", "\n21\n"), "log_vkeys": [fixture.key.verifier.vkey]},
        {"note": fixture.checkpoint_note(20, [signer_generate(ORIGIN)]), "log_vkeys": [fixture.key.verifier.vkey]},
        {"note": note_sign(f"{ORIGIN}\n020\n{b64(fixture.roots[20])}\n", [fixture.key]).encode().decode(),
         "log_vkeys": [fixture.key.verifier.vkey]},
        {"note": recosigned.encode().decode(), "log_vkeys": [fixture.key.verifier.vkey],
         "witness_vkeys": [fixture.witness.verifier.vkey]},
    ]  # fmt: skip
    proof = document["inclusion"][40]["proof"]
    proof[1] = b64(bytes(32))
    document["consistency"][30]["old_root"] = b64(fixture.roots[3])
    status, verdicts = crosscheck_run(go_crosscheck, document)
    assert status == 1
    assert [v["verdict"] for v in verdicts["checkpoints"]] == [
        f"invalid signature for key audit.example/kubernaut+{fixture.key.key_hash:08x}",
        "note has no verifiable signatures",
        'bad tree size "020"',
        f"invalid signature for key witness.example/w1+{fixture.witness.key_hash:08x}",
    ]
    assert [i for i, v in enumerate(verdicts["inclusion"]) if v != "ok"] == [40]
    assert [i for i, v in enumerate(verdicts["consistency"]) if v != "ok"] == [30]
