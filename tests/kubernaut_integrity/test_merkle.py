"""The Merkle Tree Hash: RFC 6962's definition, computed bottom-up."""

from __future__ import annotations

import hashlib

import pytest

from kubernaut_integrity.merkle import merkle_root


def _rfc6962(entries: list[bytes]) -> bytes:
    """The definition of RFC 6962 section 2.1, recursively."""
    if not entries:
        return hashlib.sha256(b"").digest()
    if len(entries) == 1:
        return hashlib.sha256(b"\x00" + entries[0]).digest()
    split = 1
    while split * 2 < len(entries):
        split *= 2
    return hashlib.sha256(b"\x01" + _rfc6962(entries[:split]) + _rfc6962(entries[split:])).digest()


@pytest.mark.parametrize("count", [0, 1, 2, 3, 4, 5, 7, 8, 9, 13, 64, 100])
def test_merkle_root_is_rfc_6962(count: int) -> None:
    entries = [hashlib.sha256(str(i).encode()).digest() for i in range(count)]
    assert merkle_root(entries) == _rfc6962(entries)


def test_empty_tree_is_the_hash_of_nothing() -> None:
    assert merkle_root([]).hex() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
