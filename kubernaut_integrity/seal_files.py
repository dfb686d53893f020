"""The seal file: a seal's copy outside the database, with the leaves that name changed rows.

`seal-<sequence, 12 digits>.json` holds the body (its exact text), the signature (base64) and
the leaves: per table, base64 of (id as signed 64-bit big-endian, 32-byte row hash) for every
row, in id order. The leaves are not signed themselves; they are trusted only when they
rebuild the signed roots, and then a verifier names the exact rows that changed.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kubernaut_integrity.canonical import SEALED_TABLES
from kubernaut_integrity.files import atomic_write
from kubernaut_integrity.seals import Leaves, Seal, leaves_pack, leaves_unpack


def seal_file_name(sequence: int) -> str:
    return f"seal-{sequence:012d}.json"


def seal_file_write(directory: Path, seal: Seal, leaves: Mapping[str, Leaves] | None) -> Path:
    """Write the seal file, whole or not at all."""
    directory.mkdir(parents=True, exist_ok=True)
    document: dict[str, Any] = {
        "body": seal.body_bytes.decode(),
        "signature": base64.b64encode(seal.signature).decode(),
    }
    if leaves is not None:
        document["leaves"] = {table: leaves_pack(leaves.get(table, [])) for table in SEALED_TABLES}
    path = directory / seal_file_name(seal.body["sequence"])
    atomic_write(path, json.dumps(document, indent=1).encode() + b"\n")
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
