"""Witness cosignatures (tlog-cosignature/v1, Ed25519): the signed message, the timestamp, and
the type byte that keeps witness keys and note keys apart."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from kubernaut_integrity.cosignature import (
    COSIGNATURE_V1,
    Cosigner,
    cosignature_time,
    cosigner_verifier_from_vkey,
)
from kubernaut_integrity.note import (
    Ed25519Signer,
    NoteError,
    key_hash,
    note_open,
    note_sign,
    public_key_raw,
    verifier_from_vkey,
)

CHECKPOINT = "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"


def _cosigner(at: float = 1679315147) -> Cosigner:
    return Cosigner(name="witness.example/w1", private_key=Ed25519PrivateKey.generate(), clock=lambda: at)


def test_a_cosignature_is_the_timestamp_and_ed25519_over_the_v1_message() -> None:
    cosigner = _cosigner()
    signature = note_sign(CHECKPOINT, [cosigner]).signatures[0]
    assert len(signature.signature) == 8 + 64
    assert cosignature_time(signature) == 1679315147
    message = b"cosignature/v1\ntime 1679315147\n" + CHECKPOINT.encode()
    cosigner.private_key.public_key().verify(signature.signature[8:], message)
    assert signature.key_hash == key_hash(
        "witness.example/w1", bytes([COSIGNATURE_V1]) + public_key_raw(cosigner.private_key.public_key())
    )


def test_a_cosigned_note_opens_with_the_witness_vkey() -> None:
    cosigner = _cosigner()
    data = note_sign(CHECKPOINT, [cosigner]).encode()
    verifier = cosigner_verifier_from_vkey(cosigner.verifier.vkey)
    assert [s.name for s in note_open(data, [verifier]).verified] == ["witness.example/w1"]


def test_a_changed_timestamp_breaks_the_cosignature() -> None:
    cosigner = _cosigner()
    signature = note_sign(CHECKPOINT, [cosigner]).signatures[0]
    later = (1679315148).to_bytes(8, "big") + signature.signature[8:]
    assert not cosigner.verifier.verify(CHECKPOINT.encode(), later)
    assert not cosigner.verifier.verify(CHECKPOINT.encode(), signature.signature[:-1])
    assert not cosigner.verifier.verify(CHECKPOINT.encode(), (2**63).to_bytes(8, "big") + signature.signature[8:])


def test_the_same_key_as_note_key_and_as_cosigner_has_two_key_hashes() -> None:
    private = Ed25519PrivateKey.generate()
    as_cosigner = Cosigner(name="w", private_key=private)
    as_note_key = Ed25519Signer(name="w", private_key=private)
    assert as_cosigner.key_hash != as_note_key.key_hash
    data = note_sign(CHECKPOINT, [as_cosigner]).encode()
    with pytest.raises(NoteError, match="no signature by a trusted key"):
        note_open(data, [as_note_key.verifier])


def test_vkeys_of_the_other_type_are_refused() -> None:
    cosigner = _cosigner()
    with pytest.raises(NoteError, match="not an Ed25519 note key"):
        verifier_from_vkey(cosigner.verifier.vkey)
    note_key = Ed25519Signer(name="w", private_key=Ed25519PrivateKey.generate())
    with pytest.raises(NoteError, match="not an Ed25519 cosignature key"):
        cosigner_verifier_from_vkey(note_key.verifier.vkey)
