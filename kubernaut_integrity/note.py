"""Signed notes (C2SP signed-note): a text signed by one or more named keys.

    <text, ending in a newline>
    <blank line>
    — <key name> <base64(key hash, 4 bytes big-endian || signature)>
    ...

The text includes its final newline, not the blank line; it is split from the signatures at
the last blank line. Notes are UTF-8 without control characters other than newline. A key
name is non-empty, without Unicode spaces or `+`. The key hash is the first four bytes of
SHA-256(name || 0x0A || signature type || public key), signature type 0x01 for Ed25519 over
the text; other types (the witness cosignatures of `cosignature.py`) use the same lines.

Keys travel as text, as Go's note package writes them:

    verifier key   <name>+<key hash, 8 hex digits>+<base64(0x01 || 32-byte public key)>
    signer key     PRIVATE+KEY+<name>+<key hash>+<base64(0x01 || 32-byte seed)>

Opening a note checks every signature from a trusted key (one that fails rejects the whole
note), needs at least one, and keeps the signatures of unknown keys untouched: they are how
another log key (rotation) or a witness signs the same note.

Stricter than Go's reader on purpose: base64 must be canonical (no stray padding bits), so
that no byte of a note can change without its verification changing.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

ED25519 = 0x01
SIGNATURE_PREFIX = "— "
#: Go's note reader refuses more; the specification asks readers to accept at least 16.
MAX_SIGNATURES = 100


class NoteError(ValueError):
    """A note, key or signature that is malformed or does not verify."""


class Signer(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def key_hash(self) -> int: ...
    def sign(self, text: bytes) -> bytes: ...


class Verifier(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def key_hash(self) -> int: ...
    def verify(self, text: bytes, signature: bytes) -> bool: ...


def name_valid(name: str) -> bool:
    return bool(name) and "+" not in name and not any(character.isspace() for character in name)


def key_hash(name: str, key: bytes) -> int:
    """The key hash of `key` (signature type byte || public key) under `name`."""
    return int.from_bytes(hashlib.sha256(name.encode() + b"\n" + key).digest()[:4], "big")


def b64decode_canonical(text: str) -> bytes:
    """Standard base64, refusing anything but the one encoding of its bytes."""
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as error:
        raise NoteError(f"not base64: {text[:40]!r}") from error
    if base64.b64encode(data).decode() != text:
        raise NoteError(f"not canonical base64: {text[:40]!r}")
    return data


# --- signatures and notes ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Signature:
    """One signature line: the key's name and hash, and the signature bytes after the hash."""

    name: str
    key_hash: int
    signature: bytes

    @property
    def line(self) -> str:
        encoded = base64.b64encode(self.key_hash.to_bytes(4, "big") + self.signature).decode()
        return f"{SIGNATURE_PREFIX}{self.name} {encoded}\n"

    @property
    def key(self) -> tuple[str, int]:
        return self.name, self.key_hash


def signature_line_parse(line: str) -> Signature:
    """One signature line without its newline."""
    if not line.startswith(SIGNATURE_PREFIX):
        raise NoteError(f"not a signature line: {line[:40]!r}")
    name, _, encoded = line[len(SIGNATURE_PREFIX) :].partition(" ")
    if not name_valid(name):
        raise NoteError(f"invalid key name {name!r}")
    raw = b64decode_canonical(encoded)
    if len(raw) < 5:
        raise NoteError(f"signature of {name} too short")
    return Signature(name=name, key_hash=int.from_bytes(raw[:4], "big"), signature=raw[4:])


@dataclass(frozen=True, slots=True)
class Note:
    text: str
    signatures: tuple[Signature, ...]

    def encode(self) -> bytes:
        return (self.text + "\n" + "".join(signature.line for signature in self.signatures)).encode()


def _text_check(data: bytes) -> str:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise NoteError("a note is UTF-8") from error
    if any(character < " " and character != "\n" for character in text):
        raise NoteError("a note has no control characters other than newline")
    return text


def note_parse(data: bytes) -> Note:
    """The text and signature lines of a note, checked for form only (see note_open)."""
    whole = _text_check(data)
    split = whole.rfind("\n\n")
    if split < 0:
        raise NoteError("a note's signatures follow a blank line")
    text, block = whole[: split + 1], whole[split + 2 :]
    if not block.endswith("\n"):
        raise NoteError("a note ends with a signature line and a newline")
    lines = block[:-1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise NoteError(f"more than {MAX_SIGNATURES} signatures")
    return Note(text=text, signatures=tuple(signature_line_parse(line) for line in lines))


@dataclass(frozen=True, slots=True)
class OpenedNote:
    """A note whose `verified` signatures are good signatures by trusted keys."""

    note: Note
    verified: tuple[Signature, ...]
    unverified: tuple[Signature, ...]

    @property
    def text(self) -> str:
        return self.note.text


def note_open(data: bytes, verifiers: Iterable[Verifier]) -> OpenedNote:
    """Parse and verify a note against the trusted `verifiers`; raises NoteError.

    A signature by a trusted key that does not verify rejects the note; so does a note with no
    signature by a trusted key. A key's second signature is ignored, as Go's reader does.
    """
    note = note_parse(data)
    trusted: dict[tuple[str, int], Verifier] = {}
    for verifier in verifiers:
        if (verifier.name, verifier.key_hash) in trusted:
            raise NoteError(f"two trusted keys named {verifier.name}+{verifier.key_hash:08x}")
        trusted[verifier.name, verifier.key_hash] = verifier
    text = note.text.encode()
    verified: list[Signature] = []
    unverified: list[Signature] = []
    for signature in note.signatures:
        key = trusted.get(signature.key)
        if key is None:
            unverified.append(signature)
        elif all(seen.key != signature.key for seen in verified):
            if not key.verify(text, signature.signature):
                raise NoteError(f"invalid signature for key {signature.name}+{signature.key_hash:08x}")
            verified.append(signature)
    if not verified:
        raise NoteError("no signature by a trusted key")
    return OpenedNote(note=note, verified=tuple(verified), unverified=tuple(unverified))


def note_sign(text: str, signers: Iterable[Signer], *, keep: Iterable[Signature] = ()) -> Note:
    """`text` signed by `signers`, after the signatures to `keep` (but any by the same keys)."""
    data = text.encode()
    if not text.endswith("\n"):
        raise NoteError("a note's text ends with a newline")
    _text_check(data)
    fresh = []
    for signer in signers:
        if not name_valid(signer.name):
            raise NoteError(f"invalid key name {signer.name!r}")
        fresh.append(Signature(name=signer.name, key_hash=signer.key_hash, signature=signer.sign(data)))
    renewed = {signature.key for signature in fresh}
    kept = tuple(signature for signature in keep if signature.key not in renewed)
    return Note(text=text, signatures=(*kept, *fresh))


def note_with_signatures(note: Note, signatures: Iterable[Signature]) -> Note:
    """`note` with further signatures (cosignatures) appended; a key already present keeps its own."""
    present = {signature.key for signature in note.signatures}
    added = []
    for signature in signatures:
        if signature.key not in present:
            present.add(signature.key)
            added.append(signature)
    return Note(text=note.text, signatures=(*note.signatures, *added))


# --- Ed25519 keys ------------------------------------------------------------------------------


def public_key_raw(public_key: Ed25519PublicKey) -> bytes:
    return public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def vkey_encode(name: str, signature_type: int, public: bytes) -> str:
    if not name_valid(name):
        raise NoteError(f"invalid key name {name!r}")
    key = bytes([signature_type]) + public
    return f"{name}+{key_hash(name, key):08x}+{base64.b64encode(key).decode()}"


def vkey_decode(vkey: str) -> tuple[str, int, bytes]:
    """(name, signature type, public key) of a verifier key, its key hash checked."""
    name, _, rest = vkey.strip().partition("+")
    hash_hex, _, encoded = rest.partition("+")
    if not name_valid(name) or len(hash_hex) != 8 or not all(c in "0123456789abcdefABCDEF" for c in hash_hex):
        raise NoteError(f"malformed verifier key {vkey[:60]!r}")
    key = b64decode_canonical(encoded)
    if len(key) < 2:
        raise NoteError(f"malformed verifier key {vkey[:60]!r}")
    if key_hash(name, key) != int(hash_hex, 16):
        raise NoteError(f"verifier key {name}+{hash_hex}: the key hash does not match the key")
    return name, key[0], key[1:]


@dataclass(frozen=True, slots=True)
class Ed25519Verifier:
    name: str
    public_key: Ed25519PublicKey

    @property
    def key_hash(self) -> int:
        return key_hash(self.name, bytes([ED25519]) + public_key_raw(self.public_key))

    @property
    def vkey(self) -> str:
        return vkey_encode(self.name, ED25519, public_key_raw(self.public_key))

    def verify(self, text: bytes, signature: bytes) -> bool:
        try:
            self.public_key.verify(signature, text)
        except InvalidSignature:
            return False
        return True


@dataclass(frozen=True, slots=True)
class Ed25519Signer:
    name: str
    private_key: Ed25519PrivateKey

    @property
    def verifier(self) -> Ed25519Verifier:
        return Ed25519Verifier(name=self.name, public_key=self.private_key.public_key())

    @property
    def key_hash(self) -> int:
        return self.verifier.key_hash

    @property
    def skey(self) -> str:
        seed = self.private_key.private_bytes(
            serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
        )
        return f"PRIVATE+KEY+{self.name}+{self.key_hash:08x}+{base64.b64encode(bytes([ED25519]) + seed).decode()}"

    def sign(self, text: bytes) -> bytes:
        return self.private_key.sign(text)


def verifier_from_vkey(vkey: str) -> Ed25519Verifier:
    """An Ed25519 (type 0x01) verifier key."""
    name, signature_type, public = vkey_decode(vkey)
    if signature_type != ED25519 or len(public) != 32:
        raise NoteError(f"verifier key {name}: not an Ed25519 note key (type {signature_type:#04x})")
    return Ed25519Verifier(name=name, public_key=Ed25519PublicKey.from_public_bytes(public))


def signer_from_skey(skey: str) -> Ed25519Signer:
    parts = skey.strip().split("+", 4)
    if len(parts) != 5 or parts[:2] != ["PRIVATE", "KEY"] or not name_valid(parts[2]) or len(parts[3]) != 8:
        raise NoteError("malformed signer key")
    key = b64decode_canonical(parts[4])
    if len(key) != 33 or key[0] != ED25519:
        raise NoteError("signer key: not an Ed25519 seed")
    signer = Ed25519Signer(name=parts[2], private_key=Ed25519PrivateKey.from_private_bytes(key[1:]))
    if f"{signer.key_hash:08x}" != parts[3].lower():
        raise NoteError(f"signer key {parts[2]}: the key hash does not match the key")
    return signer


def signer_generate(name: str) -> Ed25519Signer:
    if not name_valid(name):
        raise NoteError(f"invalid key name {name!r}")
    return Ed25519Signer(name=name, private_key=Ed25519PrivateKey.generate())
