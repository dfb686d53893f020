"""Byte flips for mutation tests: change one byte of serialized evidence, expect a refusal.

`flips_accepted(data, accepts)` tries every position (each with a few XOR masks) and returns
the flips that `accepts` still takes: for a note or a proof the answer must be empty.
`byte_flip()` is the Hypothesis strategy of one flip, for property tests over random
positions and masks of larger inputs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from hypothesis import strategies as st

#: The lowest bit, the highest bit, every bit: a flip of each kind at every position.
MASKS = (0x01, 0x80, 0xFF)


def flipped(data: bytes, position: int, mask: int) -> bytes:
    if not 0 < mask < 256:
        raise ValueError("a flip changes the byte: a mask in 1..255")
    changed = bytearray(data)
    changed[position] ^= mask
    return bytes(changed)


def flips_accepted(
    data: bytes,
    accepts: Callable[[bytes], bool],
    *,
    positions: Iterable[int] | None = None,
    masks: Iterable[int] = MASKS,
) -> list[tuple[int, int]]:
    """(position, mask) of every flip `accepts` returns True for; `data` itself must be accepted."""
    if not accepts(data):
        raise AssertionError("the unchanged data is refused: the check refuses everything")
    chosen_masks = tuple(masks)
    return [
        (position, mask)
        for position in (range(len(data)) if positions is None else positions)
        for mask in chosen_masks
        if accepts(flipped(data, position, mask))
    ]


def byte_flip(size: int) -> st.SearchStrategy[tuple[int, int]]:
    """One flip of data of `size` bytes: (position, mask)."""
    return st.tuples(st.integers(0, size - 1), st.integers(1, 255))
