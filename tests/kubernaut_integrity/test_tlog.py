"""The seal log's Merkle tree: tree heads, proofs made from stored subtree hashes and checked
by the RFC 9162 algorithms, and what appending stores."""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kubernaut_integrity.merkle import merkle_root
from kubernaut_integrity.tlog import (
    EMPTY_ROOT,
    HASH_SIZE,
    MemoryLog,
    Node,
    ProofError,
    consistency_proof,
    consistency_verify,
    inclusion_proof,
    inclusion_verify,
    leaf_hash,
    leaves_append,
    node_home,
    stored_hash_count,
    tree_hash,
)
from testutils.mutation import byte_flip, flipped, flips_accepted

#: The eight-leaf tree of the RFC 6962 reference tests, and its roots at sizes 1..8.
VECTOR_LEAVES = [b"", b"\x00", b"\x10", b"\x20\x21", b"\x30\x31", b"\x40\x41\x42\x43", bytes(range(0x50, 0x58)),
                 bytes(range(0x60, 0x70))]  # fmt: skip
VECTOR_ROOTS = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]


def _leaves(count: int, seed: int = 0) -> list[bytes]:
    generator = random.Random(seed)
    return [generator.randbytes(generator.randint(0, 40)) for _ in range(count)]


def _log(leaves: list[bytes]) -> MemoryLog:
    log = MemoryLog()
    log.extend(leaves)
    return log


def test_tree_heads_match_the_rfc6962_test_vectors() -> None:
    log = _log(VECTOR_LEAVES)
    assert [tree_hash(size=n, read=log.read).hex() for n in range(1, 9)] == VECTOR_ROOTS
    assert tree_hash(size=0, read=log.read) == EMPTY_ROOT


def test_tree_heads_match_the_seal_merkle_root_at_every_size() -> None:
    leaves = _leaves(70)
    log = MemoryLog()
    for size in range(71):
        assert tree_hash(size=size, read=log.read) == merkle_root(leaves[:size]), size
        if size < 70:
            log.append(leaves[size])


def test_every_inclusion_proof_verifies() -> None:
    leaves = _leaves(40)
    log = _log(leaves)
    for size in range(1, 41):
        root = merkle_root(leaves[:size])
        for index in range(size):
            proof = inclusion_proof(index=index, size=size, read=log.read)
            inclusion_verify(index=index, size=size, leaf=leaf_hash(leaves[index]), proof=proof, root=root)


def test_every_consistency_proof_verifies() -> None:
    leaves = _leaves(40)
    log = _log(leaves)
    roots = [merkle_root(leaves[:size]) for size in range(41)]
    for new in range(41):
        for old in range(new + 1):
            proof = consistency_proof(old_size=old, new_size=new, read=log.read)
            consistency_verify(old_size=old, old_root=roots[old], new_size=new, new_root=roots[new], proof=proof)


def test_an_inclusion_proof_holds_for_its_leaf_index_and_root_only() -> None:
    leaves = _leaves(21)
    log = _log(leaves)
    root = merkle_root(leaves)
    proof = inclusion_proof(index=13, size=21, read=log.read)
    with pytest.raises(ProofError, match="does not lead to the root"):
        inclusion_verify(index=13, size=21, leaf=leaf_hash(leaves[12]), proof=proof, root=root)
    with pytest.raises(ProofError):
        inclusion_verify(index=12, size=21, leaf=leaf_hash(leaves[13]), proof=proof, root=root)
    with pytest.raises(ProofError, match="does not lead to the root"):
        inclusion_verify(index=13, size=21, leaf=leaf_hash(leaves[13]), proof=proof, root=merkle_root(leaves[:20]))
    with pytest.raises(ProofError, match="too short"):
        inclusion_verify(index=13, size=21, leaf=leaf_hash(leaves[13]), proof=proof[:-1], root=root)
    with pytest.raises(ProofError, match="too long"):
        inclusion_verify(index=13, size=21, leaf=leaf_hash(leaves[13]), proof=[*proof, proof[0]], root=root)


def test_an_inclusion_proof_does_not_bind_the_tree_size() -> None:
    """Why a verifier takes the size from the signed checkpoint, never from beside the proof:
    leaf 0's proof in the size-3 tree also passes as a proof in a size-4 tree of the same root."""
    leaves = _leaves(3)
    log = _log(leaves)
    root = merkle_root(leaves)
    proof = inclusion_proof(index=0, size=3, read=log.read)
    inclusion_verify(index=0, size=4, leaf=leaf_hash(leaves[0]), proof=proof, root=root)


def test_a_forked_log_is_not_consistent_with_the_original() -> None:
    honest = _leaves(30)
    forked = [*honest[:11], b"rewritten", *honest[12:]]
    proof = consistency_proof(old_size=17, new_size=30, read=_log(forked).read)
    with pytest.raises(ProofError, match="old root"):
        consistency_verify(
            old_size=17, old_root=merkle_root(honest[:17]), new_size=30, new_root=merkle_root(forked), proof=proof
        )


@pytest.mark.parametrize(
    ("old_size", "new_size", "proof", "message"),
    [
        (5, 4, [], "shrank"),
        (0, 4, [b"\x00" * 32], "must be empty"),
        (4, 4, [b"\x00" * 32], "must be empty"),
        (3, 4, [], "is empty"),
        (3, 4, [b"\x00" * 31], "32-byte hashes"),
    ],
)
def test_malformed_consistency_proofs_are_refused(
    old_size: int, new_size: int, proof: list[bytes], message: str
) -> None:
    with pytest.raises(ProofError, match=message):
        consistency_verify(old_size=old_size, old_root=EMPTY_ROOT, new_size=new_size, new_root=EMPTY_ROOT, proof=proof)


def test_equal_sizes_need_equal_roots() -> None:
    with pytest.raises(ProofError, match="two different roots for size 4"):
        consistency_verify(old_size=4, old_root=EMPTY_ROOT, new_size=4, new_root=b"\x01" * 32, proof=[])


def test_proofs_for_leaves_or_sizes_beyond_the_tree_are_refused() -> None:
    log = _log(_leaves(5))
    with pytest.raises(ProofError):
        inclusion_proof(index=5, size=5, read=log.read)
    with pytest.raises(ProofError):
        consistency_proof(old_size=6, new_size=5, read=log.read)
    with pytest.raises(ProofError, match="not complete"):
        tree_hash(size=6, read=log.read)


def test_append_stores_the_completed_subtrees_in_their_home_leaf() -> None:
    log = _log(_leaves(300))
    assert sum(len(stored) for stored in log.leaves) == stored_hash_count(300) * HASH_SIZE
    # Leaf 7 (binary 111) completes the nodes (0, 7), (1, 3), (2, 1) and (3, 0).
    assert len(log.leaves[7]) == 4 * HASH_SIZE
    assert [node_home(Node(level, 7 >> level)) for level in range(4)] == [(7, 0), (7, 1), (7, 2), (7, 3)]
    assert log.leaves[7][3 * HASH_SIZE :] == merkle_root(_leaves(300)[:8])
    assert len(log.leaves[8]) == HASH_SIZE


def test_appending_reads_one_stored_hash_per_trailing_one_bit() -> None:
    log = _log(_leaves(15))
    log.reads = 0
    log.append(b"leaf 15")  # 15 = 0b1111: its four left siblings
    assert log.reads == 4
    log.reads = 0
    log.append(b"leaf 16")
    assert log.reads == 0


def test_a_batch_stores_what_appending_one_by_one_stores_with_one_read() -> None:
    leaves = _leaves(100)
    one_by_one = MemoryLog()
    for leaf in leaves:
        one_by_one.append(leaf)
    batched = _log(leaves[:37])
    batched.reads = 0
    calls: list[int] = []

    def read(nodes: Sequence[Node]) -> list[bytes]:
        calls.append(len(nodes))
        return batched.read(nodes)

    batched.leaves.extend(leaves_append(start=37, leaves=[leaf_hash(leaf) for leaf in leaves[37:]], read=read))
    assert batched.leaves == one_by_one.leaves
    # Leaves 37..99 need, from before the batch, the subtrees of 37's binary form: (0, 36), (2, 8), (5, 0).
    assert calls == [3]


def test_a_proof_reads_logarithmically_many_stored_hashes() -> None:
    generator = random.Random(7)
    log = _log(_leaves(5000))
    for size in (1, 2, 3, 1000, 1023, 1024, 1025, 4999, 5000):
        for _ in range(20):
            index = generator.randrange(size)
            log.reads = 0
            inclusion_proof(index=index, size=size, read=log.read)
            assert log.reads <= 2 * size.bit_length(), (size, index, log.reads)
            log.reads = 0
            consistency_proof(old_size=index + 1, new_size=size, read=log.read)
            assert log.reads <= 2 * size.bit_length(), (size, index, log.reads)


def _inclusion_accepts(root: bytes, size: int, leaf: bytes) -> Callable[[bytes], bool]:
    def accepts(serialized: bytes) -> bool:
        index, hashes = int.from_bytes(serialized[:8], "big"), serialized[8:]
        proof = [hashes[i : i + HASH_SIZE] for i in range(0, len(hashes), HASH_SIZE)]
        try:
            inclusion_verify(index=index, size=size, leaf=leaf, proof=proof, root=root)
        except ProofError:
            return False
        return True

    return accepts


def test_flipping_any_byte_of_an_inclusion_proof_or_its_index_fails() -> None:
    leaves = _leaves(77)
    log = _log(leaves)
    root = merkle_root(leaves)
    for index in (0, 38, 64, 76):
        serialized = index.to_bytes(8, "big") + b"".join(inclusion_proof(index=index, size=77, read=log.read))
        assert flips_accepted(serialized, _inclusion_accepts(root, 77, leaf_hash(leaves[index]))) == []


def test_flipping_any_byte_of_a_consistency_proof_or_its_old_size_fails() -> None:
    leaves = _leaves(77)
    log = _log(leaves)
    old_root, new_root = merkle_root(leaves[:29]), merkle_root(leaves)

    def accepts(serialized: bytes) -> bool:
        hashes = serialized[8:]
        try:
            consistency_verify(
                old_size=int.from_bytes(serialized[:8], "big"),
                old_root=old_root,
                new_size=77,
                new_root=new_root,
                proof=[hashes[i : i + HASH_SIZE] for i in range(0, len(hashes), HASH_SIZE)],
            )
        except ProofError:
            return False
        return True

    serialized = (29).to_bytes(8, "big") + b"".join(consistency_proof(old_size=29, new_size=77, read=log.read))
    assert flips_accepted(serialized, accepts) == []


@settings(max_examples=60, deadline=None, database=None)
@given(data=st.data(), size=st.integers(1, 300))
def test_random_proofs_verify_and_any_flip_breaks_them(data: st.DataObject, size: int) -> None:
    leaves = _leaves(size, seed=size)
    log = _log(leaves)
    index = data.draw(st.integers(0, size - 1))
    old = data.draw(st.integers(1, size))
    inclusion = inclusion_proof(index=index, size=size, read=log.read)
    consistency = consistency_proof(old_size=old, new_size=size, read=log.read)
    root, old_root = merkle_root(leaves), merkle_root(leaves[:old])
    inclusion_verify(index=index, size=size, leaf=leaf_hash(leaves[index]), proof=inclusion, root=root)
    consistency_verify(old_size=old, old_root=old_root, new_size=size, new_root=root, proof=consistency)
    if inclusion:
        flat = flipped(b"".join(inclusion), *data.draw(byte_flip(len(inclusion) * HASH_SIZE)))
        broken = [flat[i : i + HASH_SIZE] for i in range(0, len(flat), HASH_SIZE)]
        with pytest.raises(ProofError):
            inclusion_verify(index=index, size=size, leaf=leaf_hash(leaves[index]), proof=broken, root=root)
    if consistency:
        flat = flipped(b"".join(consistency), *data.draw(byte_flip(len(consistency) * HASH_SIZE)))
        broken = [flat[i : i + HASH_SIZE] for i in range(0, len(flat), HASH_SIZE)]
        with pytest.raises(ProofError):
            consistency_verify(old_size=old, old_root=old_root, new_size=size, new_root=root, proof=broken)
