"""The seal: one window of `recorded_at`, its rows' Merkle roots, chained and Ed25519-signed.

A seal's body is a JSON object written in the canonical JSON of `canonical.py` (sorted keys,
no whitespace, UTF-8); its signature is Ed25519 over exactly those bytes, and its hash (what
the next seal names as `previous`) is SHA-256 of those bytes.

    {"format": "kubernaut-audit-seal/1", "form": 1, "sequence": 42,
     "window": {"start": "...Z", "end": "...Z"},
     "tables": {"audit_remediation": {"count": 3, "root": "<hex>", "partitions": ["..."]}, ...},
     "root": "<hex>", "previous": "<hex>", "key_id": "ed25519:<hex>", "sealed_at": "...Z"}

`tables` lists every sealed table, with a count of 0 and the empty tree's root when it had no
row in the window. A table's `root` is the RFC 6962 Merkle root of its row hashes in id order;
the seal's `root` is the Merkle root of the table roots in the order of `SEALED_TABLES`.
`partitions` names the monthly partitions those rows were in, so an export can tell which
archives a table's part of a seal needs. The first seal's `previous` is 64 zeros.

A seal file (`seal-<sequence, 12 digits>.json`) holds the body, the signature (base64) and
the leaves — every row's id and hash, per table — which are not signed themselves but must
rebuild the signed roots; with them a verifier names the exact rows that changed.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import struct
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from kubernaut_integrity.canonical import FORM_VERSION, SEALED_TABLES
from kubernaut_integrity.merkle import merkle_root

SEAL_FORMAT = "kubernaut-audit-seal/1"
GENESIS_PREVIOUS = "0" * 64
_LEAF = struct.Struct(">q32s")


def canonical_json(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"), allow_nan=False).encode()


# --- keys ----------------------------------------------------------------------------------


def key_id(public_key: Ed25519PublicKey) -> str:
    """`ed25519:` + SHA-256 of the raw 32-byte public key, hex: names the key in every seal."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return "ed25519:" + hashlib.sha256(raw).hexdigest()


def private_key_load(path: Path) -> Ed25519PrivateKey:
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError(f"{path} is not an Ed25519 private key")
    return key


def public_keys_load(paths: Iterable[Path]) -> dict[str, Ed25519PublicKey]:
    """The trusted keys by key id, from PEM files (a public key, or a private key's public half)."""
    keys: dict[str, Ed25519PublicKey] = {}
    for path in paths:
        data = path.read_bytes()
        public: Any
        if b"PRIVATE KEY" in data:
            public = serialization.load_pem_private_key(data, password=None).public_key()
        else:
            public = serialization.load_pem_public_key(data)
        if not isinstance(public, Ed25519PublicKey):
            raise ValueError(f"{path} is not an Ed25519 key")
        keys[key_id(public)] = public
    return keys


def key_pair_write(directory: Path) -> tuple[Path, Path, str]:
    """A new key pair as `seal-signing-key.pem` (mode 0600) and `seal-public-key.pem`."""
    directory.mkdir(parents=True, exist_ok=True)
    private = Ed25519PrivateKey.generate()
    private_path, public_path = directory / "seal-signing-key.pem", directory / "seal-public-key.pem"
    for path in (private_path, public_path):
        if path.exists():
            raise FileExistsError(f"{path} exists: refusing to overwrite a key")
    descriptor = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as file:
        file.write(
            private.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
    public = private.public_key()
    public_path.write_bytes(
        public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    return private_path, public_path, key_id(public)


# --- leaves ----------------------------------------------------------------------------------

#: One table's rows in a window: (id, row hash), in id order.
Leaves = list[tuple[int, bytes]]


def leaves_pack(leaves: Leaves) -> str:
    return base64.b64encode(b"".join(_LEAF.pack(row_id, digest) for row_id, digest in leaves)).decode()


def leaves_unpack(text: str) -> Leaves:
    return [(row_id, digest) for row_id, digest in _LEAF.iter_unpack(base64.b64decode(text))]


def table_entry(leaves: Leaves, partitions: Iterable[str]) -> dict[str, Any]:
    return {
        "count": len(leaves),
        "root": merkle_root([digest for _, digest in leaves]).hex(),
        "partitions": sorted(set(partitions)),
    }


def seal_root(tables: Mapping[str, Mapping[str, Any]]) -> str:
    return merkle_root([bytes.fromhex(tables[table]["root"]) for table in SEALED_TABLES]).hex()


# --- seals -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Seal:
    """A signed seal: its body's exact bytes and the Ed25519 signature over them."""

    body_bytes: bytes
    signature: bytes

    @property
    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = json.loads(self.body_bytes)
        return body

    @property
    def hash(self) -> str:
        return hashlib.sha256(self.body_bytes).hexdigest()

    def signature_check(self, trusted: Mapping[str, Ed25519PublicKey]) -> str | None:
        """None when signed by a trusted key; else why not ("unknown key ..." / "bad signature")."""
        kid = self.body.get("key_id")
        public = trusted.get(kid) if isinstance(kid, str) else None
        if public is None:
            return f"signed with unknown key {kid}"
        try:
            public.verify(self.signature, self.body_bytes)
        except InvalidSignature:
            return f"bad signature for key {kid}"
        return None


def seal_make(
    *,
    sequence: int,
    window_start: str,
    window_end: str,
    tables: Mapping[str, Mapping[str, Any]],
    previous: str,
    sealed_at: str,
    private_key: Ed25519PrivateKey,
) -> Seal:
    missing = set(SEALED_TABLES) - set(tables)
    if missing:
        raise ValueError(f"a seal lists every table; missing {sorted(missing)}")
    body = {
        "format": SEAL_FORMAT,
        "form": FORM_VERSION,
        "sequence": sequence,
        "window": {"start": window_start, "end": window_end},
        "tables": {table: dict(tables[table]) for table in SEALED_TABLES},
        "root": seal_root(tables),
        "previous": previous,
        "key_id": key_id(private_key.public_key()),
        "sealed_at": sealed_at,
    }
    body_bytes = canonical_json(body)
    return Seal(body_bytes=body_bytes, signature=private_key.sign(body_bytes))


def seal_file_name(sequence: int) -> str:
    return f"seal-{sequence:012d}.json"


def seal_file_write(directory: Path, seal: Seal, leaves: Mapping[str, Leaves] | None) -> Path:
    """Write the seal file atomically (temporary file, fsync, rename)."""
    directory.mkdir(parents=True, exist_ok=True)
    document: dict[str, Any] = {
        "body": seal.body_bytes.decode(),
        "signature": base64.b64encode(seal.signature).decode(),
    }
    if leaves is not None:
        document["leaves"] = {table: leaves_pack(leaves.get(table, [])) for table in SEALED_TABLES}
    path = directory / seal_file_name(seal.body["sequence"])
    temporary = path.with_name(path.name + ".tmp")
    with temporary.open("wb") as file:
        file.write(json.dumps(document, indent=1).encode() + b"\n")
        file.flush()
        os.fsync(file.fileno())
    temporary.replace(path)
    return path


@dataclass(frozen=True, slots=True)
class SealFile:
    seal: Seal
    leaves: dict[str, Leaves] | None


def seal_file_read(path: Path) -> SealFile:
    document = json.loads(path.read_text(encoding="utf-8"))
    seal = Seal(body_bytes=document["body"].encode(), signature=base64.b64decode(document["signature"]))
    packed = document.get("leaves")
    leaves = {table: leaves_unpack(text) for table, text in packed.items()} if packed is not None else None
    return SealFile(seal=seal, leaves=leaves)


def seal_files(directory: Path) -> list[Path]:
    return sorted(directory.glob("seal-*.json")) if directory.is_dir() else []
