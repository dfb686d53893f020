"""The seal: one window of `recorded_at`, its rows' Merkle roots, chained and Ed25519-signed.

A seal's body is a JSON object serialized once, by `seal_make`, as sorted keys without
whitespace in UTF-8 (not the PostgreSQL-written row form of `canonical.py`); those exact bytes
are kept, the signature is Ed25519 over them, and the seal's hash (what the next seal names as
`previous`) is their SHA-256.

    {"format": "kubernaut-audit-seal/1", "form": 1, "sequence": 42,
     "window": {"start": "...Z", "end": "...Z"},
     "tables": {"audit_remediation": {"count": 3, "root": "<hex>", "partitions": ["..."]}, ...},
     "root": "<hex>", "previous": "<hex>", "key_id": "ed25519:<hex>", "sealed_at": "...Z"}

`tables` lists every sealed table, with a count of 0 and the empty tree's root when it had no
row in the window. A table's `root` is the RFC 6962 Merkle root of its row hashes in id order;
the seal's `root` is the Merkle root of the table roots in the order of `SEALED_TABLES`.
`partitions` names the monthly partitions those rows were in, so an export can tell which
archives a table's part of a seal needs. The first seal's `previous` is 64 zeros.

The seal's copy outside the database, with the leaves that name changed rows, is a seal file
(`seal_files.py`).
"""

from __future__ import annotations

import base64
import hashlib
import json
import struct
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from kubernaut_integrity.canonical import FORM_VERSION, SEALED_TABLES
from kubernaut_integrity.keys import key_id
from kubernaut_integrity.merkle import merkle_root

SEAL_FORMAT = "kubernaut-audit-seal/1"
GENESIS_PREVIOUS = "0" * 64
_LEAF = struct.Struct(">q32s")


def seal_body_json(value: Any) -> bytes:
    """A seal body's exact bytes: sorted keys, no whitespace, UTF-8."""
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"), allow_nan=False).encode()


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
    body_bytes = seal_body_json(body)
    return Seal(body_bytes=body_bytes, signature=private_key.sign(body_bytes))
