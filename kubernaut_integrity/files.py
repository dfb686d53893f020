"""Files that are whole or absent: seal files, archives and their manifests."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO


@contextmanager
def atomic_file(path: Path) -> Iterator[BinaryIO]:
    """A file opened for writing as `<name>.tmp` beside `path`, flushed, fsynced and renamed
    over `path` when the block ends without an error. A rename within a directory is atomic, so
    a reader (or the next run after a crash) sees the old file or the whole new one, never a
    part; after an error the temporary file stays and the next write replaces it."""
    temporary = path.with_name(path.name + ".tmp")
    with temporary.open("wb") as file:
        yield file
        file.flush()
        os.fsync(file.fileno())
    temporary.replace(path)


def atomic_write(path: Path, data: bytes) -> None:
    with atomic_file(path) as file:
        file.write(data)


def atomic_copy(source: Path, destination: Path) -> None:
    with source.open("rb") as original, atomic_file(destination) as copy:
        shutil.copyfileobj(original, copy)
