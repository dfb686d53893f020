"""Ed25519 keys: the seal signing key, the trusted public keys, and a key's id; the seal log's note key."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from kubernaut_integrity.files import read_bounded
from kubernaut_integrity.note import signer_generate

#: A PEM Ed25519 key takes about 120 bytes: a "key" file larger than this is something else.
KEY_FILE_MAX_BYTES = 16 * 1024


def key_id(public_key: Ed25519PublicKey) -> str:
    """`ed25519:` + SHA-256 of the raw 32-byte public key, hex: names the key in every seal."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return "ed25519:" + hashlib.sha256(raw).hexdigest()


def private_key_load(path: Path) -> Ed25519PrivateKey:
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError(f"{path} is not an Ed25519 private key")
    return key


def public_keys_load(paths: Iterable[Path]) -> dict[str, Ed25519PublicKey]:
    """The trusted keys by key id, from PEM files (a public key, or a private key's public half).
    Raises ValueError naming the first file that is not such a key."""
    keys: dict[str, Ed25519PublicKey] = {}
    for path in paths:
        try:
            public = _public_key_read(path)
        except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
            raise ValueError(f"{path}: {exc}") from exc
        keys[key_id(public)] = public
    return keys


def _public_key_read(path: Path) -> Ed25519PublicKey:
    data = read_bounded(path, KEY_FILE_MAX_BYTES)
    public: Any
    if b"PRIVATE KEY" in data:
        public = serialization.load_pem_private_key(data, password=None).public_key()
    else:
        public = serialization.load_pem_public_key(data)
    if not isinstance(public, Ed25519PublicKey):
        raise ValueError("not an Ed25519 key")
    return public


def key_pair_write(directory: Path) -> tuple[Path, Path, str]:
    """A new key pair as `seal-signing-key.pem` (mode 0600) and `seal-public-key.pem`."""
    directory.mkdir(parents=True, exist_ok=True)
    private = Ed25519PrivateKey.generate()
    private_path, public_path = directory / "seal-signing-key.pem", directory / "seal-public-key.pem"
    for path in (private_path, public_path):
        if path.exists():
            raise FileExistsError(f"{path} exists: refusing to overwrite a key")
    descriptor = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as file:
        file.write(
            private.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
    public = private.public_key()
    public_path.write_bytes(
        public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    return private_path, public_path, key_id(public)


def log_key_write(directory: Path, origin: str) -> tuple[Path, Path, str]:
    """A new note key for the seal log's checkpoints, named `origin` (C2SP: a log's key is named
    for its origin): `log-signing-key` (the signer key text, mode 0600) and `log-key.vkey` (the
    verifier key auditors are given). Returns both paths and the verifier key."""
    signer = signer_generate(origin)
    directory.mkdir(parents=True, exist_ok=True)
    private_path, public_path = directory / "log-signing-key", directory / "log-key.vkey"
    for path in (private_path, public_path):
        if path.exists():
            raise FileExistsError(f"{path} exists: refusing to overwrite a key")
    descriptor = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write(signer.skey + "\n")
    public_path.write_text(signer.verifier.vkey + "\n")
    return private_path, public_path, signer.verifier.vkey
