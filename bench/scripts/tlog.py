"""Measure the seal log's primitives (kubernaut_integrity/tlog.py, note.py) in memory.

Run from the repo root (no database, no Django):

    .venv/bin/python bench/scripts/tlog.py --sizes 1000 10000 100000 1000000 --proofs 2000

For each log size n it appends n leaves of seal-body size (about 1 KB) into a MemoryLog, laid out
as a table would store it, and prints: the stored bytes per leaf; the stored hashes (point reads)
and distinct leaf rows one proof needs, mean and max over --proofs random inclusion proofs and as
many consistency proofs; the time to make a proof in memory; and the time to check one inclusion
proof. Then the time to open a checkpoint note signed by the log key and cosigned by a witness.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from kubernaut_integrity.checkpoint import Checkpoint, checkpoint_open, checkpoint_sign
from kubernaut_integrity.cosignature import Cosigner
from kubernaut_integrity.note import note_sign, note_with_signatures, signer_generate
from kubernaut_integrity.tlog import (
    HASH_SIZE,
    MemoryLog,
    consistency_proof,
    inclusion_proof,
    inclusion_verify,
    leaf_hash,
    tree_hash,
)

SEAL_BODY_BYTES = 1100


def _reads(log: MemoryLog, make: object) -> tuple[int, int]:
    log.reads = log.rows = 0
    make()  # type: ignore[operator]
    return log.reads, log.rows


def measure(size: int, proofs: int, generator: random.Random) -> None:
    log = MemoryLog()
    body = bytearray(generator.randbytes(SEAL_BODY_BYTES))
    started = time.perf_counter()
    for sequence in range(size):
        body[:8] = sequence.to_bytes(8, "big")
        log.append(bytes(body))
    append_us = (time.perf_counter() - started) / size * 1e6
    stored = sum(len(row) for row in log.leaves)
    root = tree_hash(size=size, read=log.read)

    indices = [generator.randrange(size) for _ in range(proofs)]
    inclusion = [_reads(log, lambda i=i: inclusion_proof(index=i, size=size, read=log.read)) for i in indices]
    consistency = [
        _reads(log, lambda i=i: consistency_proof(old_size=i + 1, new_size=size, read=log.read)) for i in indices
    ]
    started = time.perf_counter()
    made = [inclusion_proof(index=i, size=size, read=log.read) for i in indices]
    make_us = (time.perf_counter() - started) / proofs * 1e6

    leaves = []
    for i in indices:
        body[:8] = i.to_bytes(8, "big")
        leaves.append(leaf_hash(bytes(body)))
    started = time.perf_counter()
    for i, leaf, proof in zip(indices, leaves, made, strict=True):
        inclusion_verify(index=i, size=size, leaf=leaf, proof=proof, root=root)
    verify_us = (time.perf_counter() - started) / proofs * 1e6

    def summary(pairs: list[tuple[int, int]]) -> str:
        reads, rows = [p[0] for p in pairs], [p[1] for p in pairs]
        return (
            f"reads {statistics.mean(reads):5.1f} (max {max(reads):2d}), "
            f"rows {statistics.mean(rows):5.1f} (max {max(rows):2d})"
        )

    print(
        f"n={size:>9,}  stored {stored / size:5.1f} B/leaf ({stored // HASH_SIZE:,} hashes)  append {append_us:5.1f} us"
        f"\n    inclusion:   {summary(inclusion)}, proof {statistics.mean(len(p) for p in made):4.1f} hashes"
        f"\n    consistency: {summary(consistency)}"
        f"\n    make one inclusion proof {make_us:6.1f} us, check one {verify_us:6.1f} us",
        flush=True,
    )


def checkpoint_open_time(repeat: int) -> None:
    log_key = signer_generate("audit.example/kubernaut")
    witness = Cosigner(name="witness.example/w1", private_key=Ed25519PrivateKey.generate())
    checkpoint = Checkpoint(origin="audit.example/kubernaut", size=100000, root=bytes(32))
    note = checkpoint_sign(checkpoint, [log_key])
    data = note_with_signatures(note, note_sign(note.text, [witness]).signatures).encode()
    started = time.perf_counter()
    for _ in range(repeat):
        checkpoint_open(data, origin=checkpoint.origin, verifiers=[log_key.verifier, witness.verifier])
    print(f"open a checkpoint (log signature + cosignature): {(time.perf_counter() - started) / repeat * 1e6:.0f} us")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000, 100000, 1000000])
    parser.add_argument("--proofs", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=1)
    arguments = parser.parse_args()
    generator = random.Random(arguments.seed)
    for size in arguments.sizes:
        measure(size, arguments.proofs, generator)
    checkpoint_open_time(2000)


if __name__ == "__main__":
    main()
