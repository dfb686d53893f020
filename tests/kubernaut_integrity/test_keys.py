"""Keys: a file that is not an Ed25519 key is refused with its name, and read with a bound."""

from __future__ import annotations

from pathlib import Path

import pytest

from kubernaut_integrity.keys import key_pair_write, public_keys_load


def test_a_private_key_file_gives_its_public_half(tmp_path: Path) -> None:
    private, public, kid = key_pair_write(tmp_path)
    assert list(public_keys_load([private])) == list(public_keys_load([public])) == [kid]


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"not a key", "Unable to load PEM file"),
        (b"-----BEGIN PUBLIC KEY-----\n" + b"A" * 20_000, "more than the 16384"),
    ],
)
def test_a_file_that_is_not_a_key_is_named(tmp_path: Path, content: bytes, reason: str) -> None:
    path = tmp_path / "key.pem"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=f"^{path}: ") as refused:
        public_keys_load([path])
    assert reason in str(refused.value)
