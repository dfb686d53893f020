"""Files written whole or not at all, and files read only if regular and within their bound."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from kubernaut_integrity.files import FileRefusedError, atomic_file, atomic_write, read_bounded


def _interrupted_write(path: Path) -> None:
    with atomic_file(path) as file:
        file.write(b"half of the new")
        raise RuntimeError("interrupted")


def test_a_file_appears_only_whole(tmp_path: Path) -> None:
    path = tmp_path / "seal.json"
    atomic_write(path, b"old")
    with pytest.raises(RuntimeError):
        _interrupted_write(path)
    assert path.read_bytes() == b"old"
    atomic_write(path, b"new")
    assert path.read_bytes() == b"new"


def test_read_bounded_refuses_a_larger_file_unread(tmp_path: Path) -> None:
    path = tmp_path / "big"
    with path.open("wb") as file:
        file.truncate(1 << 40)  # a sparse terabyte: reading it would never end
    with pytest.raises(FileRefusedError, match=f"{1 << 40} bytes, more than the 1024"):
        read_bounded(path, 1024)
    path.write_bytes(b"x" * 1024)
    assert read_bounded(path, 1024) == b"x" * 1024


def test_read_bounded_refuses_what_is_not_a_regular_file(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "fifo")
    with pytest.raises(FileRefusedError, match="not a regular file"):
        read_bounded(tmp_path / "fifo", 1024)  # opened without blocking, so no writer is needed
    with pytest.raises(FileRefusedError, match="not a regular file"):
        read_bounded(Path("/dev/zero"), 1024)
    with pytest.raises(FileRefusedError, match="not a regular file"):
        read_bounded(tmp_path, 1024)
    with pytest.raises(FileRefusedError, match="cannot be opened"):
        read_bounded(tmp_path / "missing", 1024)
