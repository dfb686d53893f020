"""The seal: one window of `recorded_at`, its rows' Merkle roots, chained and Ed25519-signed.

A seal's body is a JSON object serialized once, by `seal_make`, as sorted keys without
whitespace in UTF-8 (not the PostgreSQL-written row form of `canonical.py`); those exact bytes
are kept, the signature is Ed25519 over them, and the seal's hash (what the next seal names as
`previous`) is their SHA-256.

    {"format": "kubernaut-audit-seal/1", "form": 2, "sequence": 42,
     "window": {"start": "...Z", "end": "...Z"},
     "tables": {"audit_remediation": {"count": 3, "root": "<hex>", "partitions": ["..."]}, ...},
     "root": "<hex>", "previous": "<hex>", "key_id": "ed25519:<hex>", "sealed_at": "...Z"}

`form` names the canonical form (canonical.py), which names the tables the seal covers: a seal
of form 1, made before `audit_events` existed, covers five tables and keeps verifying as it is.
`tables` lists every table of its form, with a count of 0 and the empty tree's root when it had no
row in the window. A table's `root` is the RFC 6962 Merkle root of its row hashes in id order;
the seal's `root` is the Merkle root of the table roots in the order of its form's tables.
`partitions` names the monthly partitions those rows were in, so an export can tell which
archives a table's part of a seal needs. The first seal's `previous` is 64 zeros.

The seal's copy outside the database, with the leaves that name changed rows, is a seal file
(`seal_files.py`).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
import struct
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from kubernaut_integrity.canonical import FORM_TABLES, FORM_VERSION, SEALED_TABLES, TIMESTAMP_PATTERN
from kubernaut_integrity.keys import key_id
from kubernaut_integrity.merkle import merkle_root

SEAL_FORMAT = "kubernaut-audit-seal/1"
GENESIS_PREVIOUS = "0" * 64
#: The largest seal body. Its fixed members take about 1 KiB, and each monthly partition its
#: rows were in adds a name of about 30 bytes: 64 KiB holds some 2,000 names, a first seal over
#: more than 30 years of all five tables. `seal_make` refuses a larger body, so every honest
#: body fits, and a verifier may refuse a larger one unread.
BODY_MAX_BYTES = 64 * 1024
_LEAF = struct.Struct(">q32s")
LEAF_BYTES = _LEAF.size
_SHA256_HEX = re.compile(r"[0-9a-f]{64}")
_KEY_ID = re.compile(r"ed25519:[0-9a-f]{64}")
#: Signatures found valid in this process, by SHA-256 of (key id, signature, body): a verifier
#: checks each seal's signature in the database and again in its copy outside it, almost
#: always the same bytes, and Ed25519 verification is most of the cost of a seal (about a third
#: of a full audit_verify of the volume bench's 96,600 seals). A key id is the SHA-256 of its
#: key, so it names the key. Bounded: 32-byte entries, emptied when full.
_VERIFIED: set[bytes] = set()
_VERIFIED_MAX = 1 << 20


def seal_body_json(value: Any) -> bytes:
    """A seal body's exact bytes: sorted keys, no whitespace, UTF-8."""
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"), allow_nan=False).encode()


# --- leaves ----------------------------------------------------------------------------------

#: One table's rows in a window: (id, row hash), in id order.
Leaves = list[tuple[int, bytes]]


def leaves_pack(leaves: Leaves) -> str:
    return base64.b64encode(b"".join(_LEAF.pack(row_id, digest) for row_id, digest in leaves)).decode()


def leaves_unpack(text: str) -> Leaves:
    """Raises ValueError for anything but base64 of whole leaves."""
    try:
        packed = base64.b64decode(text, validate=True)
    except binascii.Error as exc:
        raise ValueError(f"not base64: {exc}") from None
    if len(packed) % LEAF_BYTES:
        raise ValueError(f"{len(packed)} bytes are not whole leaves of {LEAF_BYTES}")
    return [(row_id, digest) for row_id, digest in _LEAF.iter_unpack(packed)]


def table_entry(leaves: Leaves, partitions: Iterable[str]) -> dict[str, Any]:
    return {
        "count": len(leaves),
        "root": merkle_root([digest for _, digest in leaves]).hex(),
        "partitions": sorted(set(partitions)),
    }


def seal_root(tables: Mapping[str, Mapping[str, Any]]) -> str:
    return merkle_root([bytes.fromhex(tables[table]["root"]) for table in SEALED_TABLES]).hex()


def seal_tables(body: Mapping[str, Any]) -> tuple[str, ...]:
    """The tables a parsed seal body covers, in seal order: those of its form."""
    return FORM_TABLES[body["form"]]


# --- seals -------------------------------------------------------------------------------------


class MalformedSealError(ValueError):
    """A seal body that is not one of this format: none of its members can be relied on."""

    def __init__(self, problem: str, sequence: int | None = None) -> None:
        super().__init__(problem)
        self.sequence = sequence


def body_parse(body_bytes: bytes) -> dict[str, Any]:
    """The seal body, checked member by member before anything reads one: bodies come from
    files and tables that someone else may have written. Raises MalformedSealError."""
    if len(body_bytes) > BODY_MAX_BYTES:
        raise MalformedSealError(f"a body of {len(body_bytes)} bytes, more than {BODY_MAX_BYTES}")
    try:
        body = json.loads(body_bytes)
    except (ValueError, RecursionError) as exc:  # RecursionError: nested deeper than the interpreter allows
        raise MalformedSealError(f"unreadable seal body: {_brief(exc)}") from None
    if not isinstance(body, dict):
        raise MalformedSealError("unreadable seal body: not a JSON object")
    sequence = body.get("sequence")
    if type(sequence) is not int or sequence < 1:
        raise MalformedSealError(f"unreadable seal body: sequence {_brief(sequence)}")
    if body.get("format") != SEAL_FORMAT or type(body.get("form")) is not int or body["form"] not in FORM_TABLES:
        raise MalformedSealError(
            f"format {_brief(body.get('format'))} form {_brief(body.get('form'))} unknown", sequence
        )
    problem = _members_problem(body)
    if problem is not None:
        raise MalformedSealError(problem, sequence)
    return body


def well_formed(seal: Seal) -> bool:
    try:
        body_parse(seal.body_bytes)
    except MalformedSealError:
        return False
    return True


def _members_problem(body: dict[str, Any]) -> str | None:
    window = body.get("window")
    if not isinstance(window, dict) or not all(_is_timestamp(window.get(end)) for end in ("start", "end")):
        return "the window is not two canonical timestamps"
    tables = body.get("tables")
    expected = FORM_TABLES[body["form"]]
    if not isinstance(tables, dict) or set(tables) != set(expected):
        return f"the tables are not {', '.join(expected)}"
    for table, entry in tables.items():
        if not (
            isinstance(entry, dict)
            and type(entry.get("count")) is int
            and entry["count"] >= 0
            and _is_sha256(entry.get("root"))
            and isinstance(entry.get("partitions"), list)
            and all(isinstance(name, str) for name in entry["partitions"])
        ):
            return f"{table} is not a count, a root and partitions"
    for member in ("root", "previous"):
        if not _is_sha256(body.get(member)):
            return f"{member} is not a SHA-256 in hex"
    if not isinstance(body.get("key_id"), str) or _KEY_ID.fullmatch(body["key_id"]) is None:
        return "key_id is not ed25519:<SHA-256 in hex>"
    if not _is_timestamp(body.get("sealed_at")):
        return "sealed_at is not a canonical timestamp"
    return None


def _is_sha256(value: Any) -> bool:
    return isinstance(value, str) and _SHA256_HEX.fullmatch(value) is not None


def _is_timestamp(value: Any) -> bool:
    return isinstance(value, str) and TIMESTAMP_PATTERN.fullmatch(value) is not None


def _brief(value: Any) -> str:
    """A value from a body someone else may have written, short and printable in a finding."""
    text = "".join(character if character.isprintable() else ascii(character)[1:-1] for character in str(value)[:80])
    return text if len(str(value)) <= 80 else text + "…"


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
        if public is None or not isinstance(kid, str):
            return f"signed with unknown key {kid}"
        # Unambiguous: a trusted key id (no NUL), the signature's length, the signature, the body.
        signed = b"%s\0%d\0%s%s" % (kid.encode(), len(self.signature), self.signature, self.body_bytes)
        remembered = hashlib.sha256(signed).digest()
        if remembered in _VERIFIED:
            return None
        try:
            public.verify(self.signature, self.body_bytes)
        except InvalidSignature:
            return f"bad signature for key {kid}"
        if len(_VERIFIED) >= _VERIFIED_MAX:
            _VERIFIED.clear()
        _VERIFIED.add(remembered)
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
    if len(body_bytes) > BODY_MAX_BYTES:
        raise ValueError(f"a seal body of {len(body_bytes)} bytes: more than {BODY_MAX_BYTES}, which verifiers refuse")
    return Seal(body_bytes=body_bytes, signature=private_key.sign(body_bytes))
