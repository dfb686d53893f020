"""Checkpoints: the exact body, parsing by the tlog-checkpoint rules, signing and opening for an
origin, and the consistency check between two of them."""

from __future__ import annotations

import base64

import pytest

from kubernaut_integrity.checkpoint import (
    Checkpoint,
    checkpoint_consistency_check,
    checkpoint_open,
    checkpoint_parse,
    checkpoint_sign,
)
from kubernaut_integrity.note import NoteError, signer_generate
from kubernaut_integrity.tlog import MemoryLog, ProofError, consistency_proof, tree_hash

ORIGIN = "audit.example/kubernaut"
ROOT = base64.b64decode("CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=")


def _log(leaves: list[bytes]) -> MemoryLog:
    log = MemoryLog()
    log.extend(leaves)
    return log


def _checkpoint(log: MemoryLog, size: int) -> Checkpoint:
    return Checkpoint(origin=ORIGIN, size=size, root=tree_hash(size=size, read=log.read))


def test_the_body_is_origin_size_and_base64_root_one_a_line() -> None:
    checkpoint = Checkpoint(origin=ORIGIN, size=20852163, root=ROOT, extensions=("ext one",))
    assert checkpoint.body == f"{ORIGIN}\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\next one\n"
    assert checkpoint_parse(checkpoint.body) == checkpoint
    assert Checkpoint(origin=ORIGIN, size=0, root=ROOT).body.split("\n")[1] == "0"


@pytest.mark.parametrize(
    "text",
    [
        f"{ORIGIN}\n012\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n",
        f"{ORIGIN}\n-1\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n",
        f"{ORIGIN}\n1٣\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n",
        f"{ORIGIN}\n{2**63}\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n",
        f"{ORIGIN}\n12\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2J=\n",
        f"{ORIGIN}\n12\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jx\n",
        f"{ORIGIN}\n12\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n\nextension\n",
        f"{ORIGIN}\n12\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=",
        f"{ORIGIN}\n12\n",
        "\n12\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n",
    ],
)
def test_malformed_checkpoints_are_refused(text: str) -> None:
    with pytest.raises(NoteError):
        checkpoint_parse(text)


def test_a_checkpoint_with_a_newline_inside_a_line_is_not_signed() -> None:
    with pytest.raises(NoteError, match="newline"):
        checkpoint_sign(Checkpoint(origin=ORIGIN, size=1, root=ROOT, extensions=("a\nb",)), [signer_generate(ORIGIN)])


def test_a_signed_checkpoint_opens_for_its_origin_with_the_log_key() -> None:
    log_key = signer_generate(ORIGIN)
    log = _log([b"seal 1", b"seal 2", b"seal 3"])
    data = checkpoint_sign(_checkpoint(log, 3), [log_key]).encode()
    opened = checkpoint_open(data, origin=ORIGIN, verifiers=[log_key.verifier])
    assert opened.checkpoint == _checkpoint(log, 3)
    with pytest.raises(NoteError, match=r"expected 'other\.example/log'"):
        checkpoint_open(data, origin="other.example/log", verifiers=[log_key.verifier])
    with pytest.raises(NoteError, match="no signature by a trusted key"):
        checkpoint_open(data, origin=ORIGIN, verifiers=[signer_generate(ORIGIN).verifier])


def test_consistent_checkpoints_pass_and_a_rewritten_history_does_not() -> None:
    seals = [f"seal {n}".encode() for n in range(1, 40)]
    log = _log(seals)
    old, new = _checkpoint(log, 17), _checkpoint(log, 39)
    checkpoint_consistency_check(old=old, new=new, proof=consistency_proof(old_size=17, new_size=39, read=log.read))
    rewritten = _log([*seals[:5], b"seal 6, rewritten", *seals[6:]])
    with pytest.raises(ProofError):
        checkpoint_consistency_check(
            old=old,
            new=_checkpoint(rewritten, 39),
            proof=consistency_proof(old_size=17, new_size=39, read=rewritten.read),
        )


def test_checkpoints_of_two_origins_are_never_consistent() -> None:
    log = _log([b"a", b"b"])
    other = Checkpoint(origin="other.example/log", size=2, root=tree_hash(size=2, read=log.read))
    with pytest.raises(ProofError, match="two logs"):
        checkpoint_consistency_check(old=_checkpoint(log, 2), new=other, proof=[])
