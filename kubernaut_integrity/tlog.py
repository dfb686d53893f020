"""A growing RFC 6962 Merkle log over stored subtree hashes: tree heads, inclusion and
consistency proofs (made and checked), and what appending a leaf must store.

Hashing (RFC 6962 section 2.1, RFC 9162 section 2.1.1):

    leaf hash = SHA-256(0x00 || leaf)        node hash = SHA-256(0x01 || left || right)

The log never keeps the whole tree. It keeps the hash of every *complete* subtree, the `Node`
(level, index) covering leaves [index * 2**level, (index + 1) * 2**level). Any node of the
RFC 6962 tree of size n, complete or on the ragged right edge, is the right fold of at most
log2(n) complete subtrees, so a tree head or a proof needs O(log n) stored hashes: `*_nodes`
name them, one `HashReader` call fetches them (one batch of point reads), and the proof is
folded from the answers.

Where a node is stored: node (level, index) becomes complete when leaf
(index + 1) * 2**level - 1 is appended, so it is kept with that leaf, at slot `level` of that
leaf's hashes (`node_home`). Appending leaf i completes 1 + (number of trailing one bits of i)
nodes: 2n - popcount(n) hashes for n leaves, under 64 bytes per leaf on average.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()


def leaf_hash(leaf: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + leaf).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


@dataclass(frozen=True, slots=True, order=True)
class Node:
    """The complete subtree of 2**level leaves starting at leaf index * 2**level."""

    level: int
    index: int


#: Reads the stored hashes of the given complete subtrees, in order: each one point read, all
#: of one tree head, proof or append asked for in a single call.
HashReader = Callable[[Sequence[Node]], Sequence[bytes]]


class ProofError(ValueError):
    """A proof that does not verify, or one asked for sizes it cannot exist for."""


def node_home(node: Node) -> tuple[int, int]:
    """(leaf index, slot): the leaf whose append completed `node`, and where it keeps the hash."""
    return ((node.index + 1) << node.level) - 1, node.level


def slot_hash(stored: bytes, slot: int) -> bytes:
    """The hash at `slot` of what a leaf stores."""
    return stored[slot * HASH_SIZE : (slot + 1) * HASH_SIZE]


def _largest_power_of_two_below(n: int) -> int:
    return 1 << ((n - 1).bit_length() - 1)


def _range_nodes(start: int, end: int) -> list[Node]:
    """The complete subtrees of the RFC 6962 node covering leaves [start, end), left to right.

    Every node of the tree starts at a multiple of a power of two at least as large as its
    width, so taking the bits of its width from the highest gives aligned subtrees.
    """
    nodes = []
    width = end - start
    for level in range(width.bit_length() - 1, -1, -1):
        if width >> level & 1:
            nodes.append(Node(level, start >> level))
            start += 1 << level
    return nodes


def _right_fold(hashes: Sequence[bytes]) -> bytes:
    folded = hashes[-1]
    for left in reversed(hashes[:-1]):
        folded = node_hash(left, folded)
    return folded


def _ranges_hashes(ranges: Sequence[tuple[int, int]], read: HashReader) -> list[bytes]:
    """The hashes of RFC 6962 nodes given by their leaf ranges, with one read of their subtrees."""
    parts = [_range_nodes(start, end) for start, end in ranges]
    wanted = sorted({node for nodes in parts for node in nodes})
    known = dict(zip(wanted, read(wanted), strict=True))
    return [_right_fold([known[node] for node in nodes]) for nodes in parts]


# --- tree heads ------------------------------------------------------------------------------


def tree_hash(*, size: int, read: HashReader) -> bytes:
    if size < 0:
        raise ProofError(f"no tree of size {size}")
    return _ranges_hashes([(0, size)], read)[0] if size else EMPTY_ROOT


# --- inclusion proofs (RFC 6962 section 2.1.1, RFC 9162 section 2.1.3) ---------------------------


def _inclusion_ranges(index: int, size: int) -> list[tuple[int, int]]:
    """PATH(index, D[0:size]): the sibling nodes from the leaf up, as leaf ranges."""
    ranges = []
    start, end = 0, size
    while end - start > 1:
        split = start + _largest_power_of_two_below(end - start)
        if index < split:
            ranges.append((split, end))
            end = split
        else:
            ranges.append((start, split))
            start = split
    return ranges[::-1]


def inclusion_proof(*, index: int, size: int, read: HashReader) -> list[bytes]:
    if not 0 <= index < size:
        raise ProofError(f"leaf {index} is not in a tree of size {size}")
    return _ranges_hashes(_inclusion_ranges(index, size), read)


def inclusion_verify(*, index: int, size: int, leaf: bytes, proof: Sequence[bytes], root: bytes) -> None:
    """RFC 9162 section 2.1.3.2, for the leaf *hash* `leaf`; raises ProofError on any mismatch."""
    if not 0 <= index < size:
        raise ProofError(f"leaf {index} is not in a tree of size {size}")
    fn, sn, computed = index, size - 1, leaf
    for sibling in _hashes_checked(proof):
        if sn == 0:
            raise ProofError(f"inclusion proof of leaf {index} in size {size} is too long")
        if fn & 1 or fn == sn:
            computed = node_hash(sibling, computed)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            computed = node_hash(computed, sibling)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise ProofError(f"inclusion proof of leaf {index} in size {size} is too short")
    if computed != root:
        raise ProofError(f"inclusion proof of leaf {index} in size {size} does not lead to the root")


# --- consistency proofs (RFC 6962 section 2.1.2, RFC 9162 section 2.1.4) -------------------------


def _consistency_ranges(old_size: int, new_size: int) -> list[tuple[int, int]]:
    """PROOF(old_size, D[0:new_size]) = SUBPROOF(old_size, D[0:new_size], true), as leaf ranges."""
    ranges = []
    start, end, m, whole_old_tree = 0, new_size, old_size, True
    while m != end - start:
        split = _largest_power_of_two_below(end - start)
        if m <= split:
            ranges.append((start + split, end))
            end = start + split
        else:
            ranges.append((start, start + split))
            start, m, whole_old_tree = start + split, m - split, False
    if not whole_old_tree:
        ranges.append((start, end))
    return ranges[::-1]


def consistency_proof(*, old_size: int, new_size: int, read: HashReader) -> list[bytes]:
    if not 0 <= old_size <= new_size:
        raise ProofError(f"no consistency proof from size {old_size} to size {new_size}")
    if old_size in (0, new_size):
        return []
    return _ranges_hashes(_consistency_ranges(old_size, new_size), read)


def consistency_verify(
    *, old_size: int, old_root: bytes, new_size: int, new_root: bytes, proof: Sequence[bytes]
) -> None:
    """RFC 9162 section 2.1.4.2; an empty tree is a prefix of every tree. Raises ProofError."""
    label = f"consistency proof from size {old_size} to size {new_size}"
    if not 0 <= old_size <= new_size:
        raise ProofError(f"no {label}: the tree shrank")
    path = _hashes_checked(proof)
    if old_size == 0 or old_size == new_size:
        if path:
            raise ProofError(f"{label} must be empty")
        if old_size == new_size and old_root != new_root:
            raise ProofError(f"two different roots for size {old_size}")
        return
    if not path:
        raise ProofError(f"{label} is empty")
    if old_size & (old_size - 1) == 0:
        path = [old_root, *path]
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise ProofError(f"{label} is too long")
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise ProofError(f"{label} is too short")
    if fr != old_root:
        raise ProofError(f"{label} does not lead to the old root")
    if sr != new_root:
        raise ProofError(f"{label} does not lead to the new root")


def _hashes_checked(proof: Sequence[bytes]) -> list[bytes]:
    hashes = list(proof)
    if any(len(h) != HASH_SIZE for h in hashes):
        raise ProofError(f"a proof is made of {HASH_SIZE}-byte hashes")
    return hashes


# --- appending -----------------------------------------------------------------------------------


def leaf_append(*, index: int, leaf: bytes, read: HashReader) -> list[bytes]:
    """The hashes leaf `index` (its leaf hash `leaf`) completes, in slot order (see node_home).

    Slot 0 is the leaf hash; slot k + 1 is node (k + 1, index >> (k + 1)), made from the
    stored left sibling (k, (index >> k) - 1): one read per trailing one bit of `index`.
    """
    completed = [leaf]
    for left in read(_left_siblings(index)):
        completed.append(node_hash(left, completed[-1]))
    return completed


def leaves_append(*, start: int, leaves: Sequence[bytes], read: HashReader) -> list[bytes]:
    """What leaves start, start + 1, ... (their leaf hashes `leaves`) store, appended together:
    each leaf's completed hashes joined in slot order. Siblings completed within the batch come
    from it; the others, all from before `start`, in one read."""
    earlier = sorted(
        {node for index in range(start, start + len(leaves)) for node in _left_siblings(index)
         if node_home(node)[0] < start}
    )  # fmt: skip
    known = dict(zip(earlier, read(earlier), strict=True))
    stored: list[bytes] = []

    def batch_read(nodes: Sequence[Node]) -> list[bytes]:
        hashes = []
        for node in nodes:
            row, slot = node_home(node)
            hashes.append(known[node] if row < start else slot_hash(stored[row - start], slot))
        return hashes

    for offset, leaf in enumerate(leaves):
        stored.append(b"".join(leaf_append(index=start + offset, leaf=leaf, read=batch_read)))
    return stored


def _left_siblings(index: int) -> list[Node]:
    return [Node(level, (index >> level) - 1) for level in range(_trailing_ones(index))]


def _trailing_ones(n: int) -> int:
    return ((n ^ (n + 1)) >> 1).bit_length()


def stored_hash_count(size: int) -> int:
    """Hashes a log of `size` leaves stores: one per complete subtree, 2n - popcount(n)."""
    return 2 * size - size.bit_count()


@dataclass(slots=True)
class MemoryLog:
    """The log in memory, laid out as a database would store it: per leaf, its completed hashes.

    `reads` counts the stored hashes asked for, `rows` the distinct leaves they were read from.
    """

    leaves: list[bytes] = field(default_factory=list)
    reads: int = 0
    rows: int = 0

    @property
    def size(self) -> int:
        return len(self.leaves)

    def read(self, nodes: Sequence[Node]) -> list[bytes]:
        hashes = []
        homes = set()
        for node in nodes:
            row, slot = node_home(node)
            if row >= len(self.leaves):
                raise ProofError(f"node {node} is not complete in a log of size {len(self.leaves)}")
            hashes.append(slot_hash(self.leaves[row], slot))
            homes.add(row)
        self.reads += len(nodes)
        self.rows += len(homes)
        return hashes

    def append(self, leaf: bytes) -> bytes:
        """Append a leaf (its data, not its hash); returns what its row stores."""
        stored = b"".join(leaf_append(index=len(self.leaves), leaf=leaf_hash(leaf), read=self.read))
        self.leaves.append(stored)
        return stored

    def extend(self, leaves: Iterable[bytes]) -> None:
        """Append leaves (their data) in one batch, as one sealing run stores several seals."""
        hashes = [leaf_hash(leaf) for leaf in leaves]
        self.leaves.extend(leaves_append(start=len(self.leaves), leaves=hashes, read=self.read))
