"""The Merkle Tree Hash of RFC 6962 (section 2.1), over SHA-256.

    MTH({})      = SHA-256()
    MTH({d0})    = SHA-256(0x00 || d0)
    MTH(D[n])    = SHA-256(0x01 || MTH(D[0:k]) || MTH(D[k:n])),  k the largest power of 2 < n

Computed bottom-up: pairing neighbours level by level and carrying an odd last node up
unchanged gives exactly that split.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

_sha256 = hashlib.sha256


def merkle_root(entries: Sequence[bytes]) -> bytes:
    if not entries:
        return _sha256(b"").digest()
    level = [_sha256(b"\x00" + entry).digest() for entry in entries]
    while len(level) > 1:
        paired = [_sha256(b"\x01" + level[i] + level[i + 1]).digest() for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            paired.append(level[-1])
        level = paired
    return level[0]
