"""Witness cosignatures (C2SP tlog-cosignature, Ed25519, signature type 0x04).

A cosignature is a note signature line on a checkpoint whose bytes are

    timestamp (8 bytes, big-endian, POSIX seconds) || Ed25519 signature (64 bytes)

over the message

    cosignature/v1
    time <timestamp>
    <the checkpoint's note text, with its final newline>

It states that, at that time, this was the largest tree the witness had seen for the origin,
consistent with everything it saw before. The key hash uses type byte 0x04, so the same
public key can never pass for a log's note key (type 0x01), and the other way round.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from kubernaut_integrity.note import NoteError, Signature, key_hash, public_key_raw, vkey_decode, vkey_encode

COSIGNATURE_V1 = 0x04
_MAX_TIMESTAMP = 2**63 - 1


def cosigned_message(text: bytes, timestamp: int) -> bytes:
    return b"cosignature/v1\ntime %d\n" % timestamp + text


def cosignature_time(signature: Signature) -> int:
    """The POSIX time a cosignature states (its first 8 bytes)."""
    return int.from_bytes(signature.signature[:8], "big")


@dataclass(frozen=True, slots=True)
class CosignatureVerifier:
    name: str
    public_key: Ed25519PublicKey

    @property
    def key_hash(self) -> int:
        return key_hash(self.name, bytes([COSIGNATURE_V1]) + public_key_raw(self.public_key))

    @property
    def vkey(self) -> str:
        return vkey_encode(self.name, COSIGNATURE_V1, public_key_raw(self.public_key))

    def verify(self, text: bytes, signature: bytes) -> bool:
        if len(signature) != 8 + 64:
            return False
        timestamp = int.from_bytes(signature[:8], "big")
        if timestamp > _MAX_TIMESTAMP:
            return False
        try:
            self.public_key.verify(signature[8:], cosigned_message(text, timestamp))
        except InvalidSignature:
            return False
        return True


@dataclass(frozen=True, slots=True)
class Cosigner:
    name: str
    private_key: Ed25519PrivateKey
    clock: Callable[[], float] = field(default=time.time)

    @property
    def verifier(self) -> CosignatureVerifier:
        return CosignatureVerifier(name=self.name, public_key=self.private_key.public_key())

    @property
    def key_hash(self) -> int:
        return self.verifier.key_hash

    def sign(self, text: bytes) -> bytes:
        timestamp = int(self.clock())
        return timestamp.to_bytes(8, "big") + self.private_key.sign(cosigned_message(text, timestamp))


def cosigner_verifier_from_vkey(vkey: str) -> CosignatureVerifier:
    """A witness's verifier key (type 0x04)."""
    name, signature_type, public = vkey_decode(vkey)
    if signature_type != COSIGNATURE_V1 or len(public) != 32:
        raise NoteError(f"verifier key {name}: not an Ed25519 cosignature key (type {signature_type:#04x})")
    return CosignatureVerifier(name=name, public_key=Ed25519PublicKey.from_public_bytes(public))
