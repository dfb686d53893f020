"""Files that are whole or absent: seal files, archives and their manifests."""

from __future__ import annotations

import os
import shutil
import stat
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


class FileRefusedError(ValueError):
    """A file not read: not a regular file, or larger than any file of its kind can be."""


def open_regular(path: Path) -> BinaryIO:
    """`path` opened for reading, if it is a regular file. A verifier reads files someone else
    may have placed: opened without blocking and checked on the open descriptor, since a FIFO
    would block it forever and a device such as /dev/zero never ends."""
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as exc:
        raise FileRefusedError(f"cannot be opened: {exc.strerror}") from exc
    if not stat.S_ISREG(os.fstat(descriptor).st_mode):
        os.close(descriptor)
        raise FileRefusedError("not a regular file")
    return os.fdopen(descriptor, "rb")


def read_bounded(path: Path, limit: int) -> bytes:
    """The whole file, refused unread when it is larger than `limit` bytes."""
    with open_regular(path) as file:
        size = os.fstat(file.fileno()).st_size
        if size > limit:
            raise FileRefusedError(f"{size} bytes, more than the {limit} such a file can have")
        data = file.read(limit + 1)
    if len(data) > limit:  # it grew while being read
        raise FileRefusedError(f"more than the {limit} bytes such a file can have")
    return data
