"""The tlog-witness client against a real HTTP witness on loopback: the request body, the
cosignature answer, the 409 retry from the witness's size, and every refusal."""

from __future__ import annotations

import socket
from collections.abc import Iterator, Sequence

import pytest

from kubernaut_integrity.checkpoint import Checkpoint, checkpoint_open, checkpoint_sign
from kubernaut_integrity.note import Ed25519Signer, note_with_signatures, signer_generate
from kubernaut_integrity.tlog import MemoryLog, consistency_proof, tree_hash
from kubernaut_integrity.witness import (
    Cosigned,
    WitnessInconsistentError,
    WitnessRefusedError,
    WitnessUnavailableError,
    add_checkpoint_body,
    witness_cosign,
)
from testutils.tlog_witness import TlogWitness

ORIGIN = "audit.example/kubernaut"
SEALS = [f"seal {n}".encode() for n in range(1, 41)]


class _Log:
    """A log of the given seals and its key, as the sealing job would hold them."""

    def __init__(self, seals: Sequence[bytes], key: Ed25519Signer) -> None:
        self.memory = MemoryLog()
        self.memory.extend(seals)
        self.key = key

    def checkpoint(self, size: int) -> Checkpoint:
        return Checkpoint(origin=ORIGIN, size=size, root=tree_hash(size=size, read=self.memory.read))

    def note(self, size: int) -> bytes:
        return checkpoint_sign(self.checkpoint(size), [self.key]).encode()

    def cosign(self, witness: TlogWitness, size: int, old_size: int) -> Cosigned:
        return witness_cosign(
            url=witness.url,
            note=self.note(size),
            checkpoint=self.checkpoint(size),
            old_size=old_size,
            proof_from=lambda old: consistency_proof(old_size=old, new_size=size, read=self.memory.read),
            verifiers=[witness.verifier],
            timeout=5,
        )


@pytest.fixture
def log() -> _Log:
    return _Log(SEALS, signer_generate(ORIGIN))


@pytest.fixture
def witness(log: _Log) -> Iterator[TlogWitness]:
    with TlogWitness(name="witness.example/w1", logs={ORIGIN: [log.key.verifier]}) as running:
        yield running


def test_the_request_body_is_old_size_proof_lines_blank_line_and_the_note() -> None:
    body = add_checkpoint_body(old_size=20852014, proof=[b"\x3e" * 32, b"\x8e" * 32], note=b"NOTE\n\n- sig\n")
    assert body == (
        b"old 20852014\nPj4+Pj4+Pj4+Pj4+Pj4+Pj4+Pj4+Pj4+Pj4+Pj4+Pj4=\njo6Ojo6Ojo6Ojo6Ojo6Ojo6Ojo6Ojo6Ojo6Ojo6Ojo4=\n\n"
        b"NOTE\n\n- sig\n"
    )
    with pytest.raises(ValueError, match="from size 0"):
        add_checkpoint_body(old_size=0, proof=[b"\x00" * 32], note=b"")


def test_a_first_checkpoint_is_cosigned_and_the_cosignature_joins_the_note(log: _Log, witness: TlogWitness) -> None:
    cosigned = log.cosign(witness, 10, 0)
    assert cosigned.old_size == 0
    assert [s.name for s in cosigned.signatures] == ["witness.example/w1"]
    assert witness.latest[ORIGIN] == (10, log.checkpoint(10).root)
    note = note_with_signatures(checkpoint_open(log.note(10), origin=ORIGIN, verifiers=[log.key.verifier]).note.note,
                                cosigned.signatures)  # fmt: skip
    opened = checkpoint_open(note.encode(), origin=ORIGIN, verifiers=[log.key.verifier, witness.verifier])
    assert {s.name for s in opened.note.verified} == {ORIGIN, "witness.example/w1"}


def test_the_next_checkpoint_carries_a_consistency_proof(log: _Log, witness: TlogWitness) -> None:
    log.cosign(witness, 10, 0)
    assert log.cosign(witness, 33, 10).old_size == 10
    assert witness.answers == [200, 200]
    assert witness.latest[ORIGIN][0] == 33


def test_a_409_names_the_witness_size_and_the_client_proves_from_there(log: _Log, witness: TlogWitness) -> None:
    log.cosign(witness, 12, 0)
    cosigned = log.cosign(witness, 40, 0)  # the client lost track of what the witness holds
    assert witness.answers == [200, 409, 200]
    assert cosigned.old_size == 12
    assert witness.latest[ORIGIN][0] == 40


def test_a_witness_refuses_a_checkpoint_of_a_rewritten_history(log: _Log, witness: TlogWitness) -> None:
    log.cosign(witness, 20, 0)
    rewritten = _Log([*SEALS[:7], b"seal 8, rewritten", *SEALS[8:]], log.key)
    with pytest.raises(WitnessInconsistentError, match="not consistent with the size 20") as refused:
        rewritten.cosign(witness, 40, 20)
    assert refused.value.status == 422
    assert witness.latest[ORIGIN] == (20, log.checkpoint(20).root)


def test_another_root_at_the_size_the_witness_holds_is_a_conflict(log: _Log, witness: TlogWitness) -> None:
    log.cosign(witness, 20, 0)
    rewritten = _Log([*SEALS[:7], b"seal 8, rewritten", *SEALS[8:]], log.key)
    with pytest.raises(WitnessInconsistentError, match="another root at size 20"):
        rewritten.cosign(witness, 20, 20)
    assert witness.answers == [200, 409]


def test_a_witness_ahead_of_the_checkpoint_means_a_rollback(log: _Log, witness: TlogWitness) -> None:
    log.cosign(witness, 30, 0)
    with pytest.raises(WitnessInconsistentError, match="cosigned size 30, beyond checkpoint size 25"):
        log.cosign(witness, 25, 0)


def test_an_unknown_origin_is_404_and_an_untrusted_log_key_is_403(log: _Log) -> None:
    with TlogWitness(name="witness.example/w2", logs={"other.example/log": [log.key.verifier]}) as elsewhere:
        with pytest.raises(WitnessRefusedError, match="unknown origin") as refused:
            log.cosign(elsewhere, 5, 0)
        assert refused.value.status == 404
    with TlogWitness(name="witness.example/w3", logs={ORIGIN: [signer_generate(ORIGIN).verifier]}) as strict:
        with pytest.raises(WitnessRefusedError, match="no signature by a log key it trusts") as refused:
            log.cosign(strict, 5, 0)
        assert refused.value.status == 403


def test_a_cosignature_by_a_key_we_do_not_trust_is_refused(log: _Log, witness: TlogWitness) -> None:
    impostor = TlogWitness(name="witness.example/w1", logs={ORIGIN: [log.key.verifier]})
    with impostor, pytest.raises(WitnessRefusedError, match="without a valid cosignature"):
        witness_cosign(
            url=impostor.url,
            note=log.note(5),
            checkpoint=log.checkpoint(5),
            old_size=0,
            proof_from=lambda old: [],
            verifiers=[witness.verifier],
            timeout=5,
        )


def test_an_unreachable_witness_is_unavailable(log: _Log) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(WitnessUnavailableError, match="not reached"):
        witness_cosign(
            url=f"http://127.0.0.1:{port}",
            note=log.note(5),
            checkpoint=log.checkpoint(5),
            old_size=0,
            proof_from=lambda old: [],
            verifiers=[],
            timeout=2,
        )
