"""Seal files: written whole, read back, and the bounds a reader applies fit every honest file."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from kubernaut_integrity.canonical import SEALED_TABLES
from kubernaut_integrity.keys import key_pair_write, private_key_load, public_keys_load
from kubernaut_integrity.seal_files import (
    HEAD_MAX_BYTES,
    SealFileError,
    leaves_max_bytes,
    seal_directory_read,
    seal_file_read,
    seal_file_write,
)
from kubernaut_integrity.seals import BODY_MAX_BYTES, Leaves, Seal, seal_make, table_entry


def _seal(private: Path, counts: dict[str, int], *, partitions: int = 1) -> tuple[Seal, dict[str, Leaves]]:
    leaves = {
        table: [(row_id, hashlib.sha256(f"{table}{row_id}".encode()).digest()) for row_id in range(1, count + 1)]
        for table, count in counts.items()
    }
    names = [f"p{month:04d}_with_a_long_partition_name" for month in range(partitions)]
    return (
        seal_make(
            sequence=7,
            window_start="2026-01-01T00:00:00.000000Z",
            window_end="2026-01-01T00:01:00.000000Z",
            tables={table: table_entry(leaves[table], names) for table in SEALED_TABLES},
            previous="a" * 64,
            sealed_at="2026-01-01T00:03:00.000000Z",
            private_key=private_key_load(private),
        ),
        leaves,
    )


@pytest.mark.parametrize("rows", [0, 1, 2, 3, 7, 1000, 25_000])
def test_an_honest_seal_file_is_within_its_bound(tmp_path: Path, rows: int) -> None:
    private, public, _ = key_pair_write(tmp_path / "keys")
    counts = {table: rows + index for index, table in enumerate(SEALED_TABLES)}
    seal, leaves = _seal(private, counts)
    path = seal_file_write(tmp_path, seal, leaves)
    head = path.read_bytes().index(b'"leaves": ') + len(b'"leaves": ')
    assert head <= HEAD_MAX_BYTES
    assert path.stat().st_size - head <= leaves_max_bytes(counts)
    copy = seal_file_read(path, trusted=public_keys_load([public]))
    assert (copy.seal, copy.leaves, copy.leaves_problem) == (seal, leaves, None)


def test_the_largest_body_fits_the_head(tmp_path: Path) -> None:
    """Partition names fill the body up to its bound; its file's head still fits HEAD_MAX_BYTES,
    and one name more is refused when the seal is made, not when it is verified."""
    private, public, _ = key_pair_write(tmp_path / "keys")
    partitions = 1
    while len(_seal(private, dict.fromkeys(SEALED_TABLES, 1), partitions=partitions + 1)[0].body_bytes) < (
        BODY_MAX_BYTES - 1000
    ):
        partitions += 1
    while True:
        try:
            _seal(private, dict.fromkeys(SEALED_TABLES, 1), partitions=partitions + 1)
        except ValueError:
            break
        partitions += 1
    with pytest.raises(ValueError, match="verifiers refuse"):
        _seal(private, dict.fromkeys(SEALED_TABLES, 1), partitions=partitions + 1)
    seal, leaves = _seal(private, dict.fromkeys(SEALED_TABLES, 1), partitions=partitions)
    assert BODY_MAX_BYTES - 1000 < len(seal.body_bytes) <= BODY_MAX_BYTES
    path = seal_file_write(tmp_path, seal, leaves)
    assert path.read_bytes().index(b'"leaves"') < HEAD_MAX_BYTES
    assert seal_file_read(path, trusted=public_keys_load([public])).leaves == leaves


def test_leaves_of_an_untrusted_seal_are_not_read(tmp_path: Path) -> None:
    """Only a trusted signature makes the counts, and so the leaves' bound, believable."""
    private, _, _ = key_pair_write(tmp_path / "keys")
    _, stranger, _ = key_pair_write(tmp_path / "stranger")
    seal, leaves = _seal(private, dict.fromkeys(SEALED_TABLES, 2))
    copy = seal_file_read(seal_file_write(tmp_path, seal, leaves), trusted=public_keys_load([stranger]))
    assert copy.seal == seal
    assert copy.leaves is None


def test_a_file_without_leaves(tmp_path: Path) -> None:
    private, public, _ = key_pair_write(tmp_path / "keys")
    seal, _ = _seal(private, dict.fromkeys(SEALED_TABLES, 2))
    copy = seal_file_read(seal_file_write(tmp_path, seal, None), trusted=public_keys_load([public]))
    assert (copy.seal, copy.leaves, copy.leaves_problem) == (seal, None, None)


def test_a_file_over_the_head_bound_without_a_seal_in_it(tmp_path: Path) -> None:
    path = tmp_path / "seal-000000000001.json"
    path.write_text('{"body": "' + "x" * (HEAD_MAX_BYTES + 10) + '"}')
    with pytest.raises(SealFileError, match=f"no body and signature within its first {HEAD_MAX_BYTES} bytes"):
        seal_file_read(path, trusted={})


def test_a_directory_of_seal_files(tmp_path: Path) -> None:
    private, public, _ = key_pair_write(tmp_path / "keys")
    seal, leaves = _seal(private, dict.fromkeys(SEALED_TABLES, 2))
    seal_file_write(tmp_path, seal, leaves)
    (tmp_path / "seal-000000000008.json").write_text("{}")
    (tmp_path / "seal-x.json").write_text("{}")
    found = seal_directory_read(tmp_path, trusted=public_keys_load([public]))
    assert list(found.files) == [7]
    assert found.unusable == {8}
    assert [(finding.kind, finding.seal) for finding in found.findings] == [
        ("seal_malformed", 8),
        ("seal_malformed", None),
    ]
    assert list(seal_directory_read(tmp_path, trusted={}, wanted=lambda sequence: sequence > 7).files) == []
