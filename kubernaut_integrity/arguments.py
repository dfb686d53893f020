"""Command-line arguments shared by `python -m kubernaut_integrity` and the integrity
management commands, so each is declared (and documented) once."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TypeVar

from kubernaut_integrity.cosignature import CosignatureVerifier, cosigner_verifier_from_vkey
from kubernaut_integrity.files import read_bounded
from kubernaut_integrity.keys import KEY_FILE_MAX_BYTES
from kubernaut_integrity.note import Ed25519Verifier, verifier_from_vkey

_Key = TypeVar("_Key")


def public_key_argument(parser: argparse.ArgumentParser, *, default: str | None = None) -> None:
    """`--public-key FILE`, repeatable, parsed into `public_keys` (a list of paths, None when not
    given): the trusted keys. Required unless `default` says where the keys come from instead."""
    parser.add_argument(
        "--public-key",
        dest="public_keys",
        type=Path,
        action="append",
        required=default is None,
        default=None,
        metavar="FILE",
        help="a trusted Ed25519 public key (PEM); repeat for every key of a rotation"
        + (f" (default {default})" if default is not None else ""),
    )


def log_key_argument(parser: argparse.ArgumentParser, *, default: str | None = None) -> None:
    """`--log-key VKEY`, repeatable, parsed into `log_keys` (None when not given): the seal log's
    trusted note keys, each a file holding a verifier key (`log-key.vkey`) or the key's text."""
    parser.add_argument(
        "--log-key",
        dest="log_keys",
        action="append",
        required=default is None,
        default=None,
        metavar="VKEY",
        help="a trusted verifier key of the seal log (the log-key.vkey file audit_keygen wrote, or its text);"
        " repeat for every key of a rotation" + (f" (default {default})" if default is not None else ""),
    )


def witness_key_argument(parser: argparse.ArgumentParser, *, default: str | None = None) -> None:
    """`--witness-key VKEY`, repeatable, parsed into `witness_keys`: witnesses whose
    cosignatures are checked (a file holding the witness's verifier key, or its text)."""
    parser.add_argument(
        "--witness-key",
        dest="witness_keys",
        action="append",
        default=None,
        metavar="VKEY",
        help="a witness's cosignature verifier key (a file, or its text); its cosignatures are checked"
        + (f" (default {default})" if default is not None else ""),
    )


def tsa_root_argument(parser: argparse.ArgumentParser, *, default: str | None = None) -> None:
    """`--tsa-root PEM`, repeatable, parsed into `tsa_roots` (paths): the time-stamp authorities'
    root certificates an RFC 3161 anchor must chain to."""
    parser.add_argument(
        "--tsa-root",
        dest="tsa_roots",
        type=Path,
        action="append",
        default=None,
        metavar="PEM",
        help="a trusted time-stamp authority's root certificate(s), PEM; without one, anchors are not checked"
        + (f" (default {default})" if default is not None else ""),
    )


def verifier_key_text(value: str) -> str:
    """A verifier key given on a command line: the text of the file it names, or itself."""
    path = Path(value)
    if path.is_file():
        return read_bounded(path, KEY_FILE_MAX_BYTES).decode("utf-8").strip()
    return value.strip()


def log_verifiers_load(values: Iterable[str]) -> list[Ed25519Verifier]:
    """The log's note verifier keys; raises ValueError naming the first that is not one."""
    return [_loaded(value, verifier_from_vkey) for value in values]


def witness_verifiers_load(values: Iterable[str]) -> list[CosignatureVerifier]:
    return [_loaded(value, cosigner_verifier_from_vkey) for value in values]


def _loaded(value: str, load: Callable[[str], _Key]) -> _Key:
    try:
        return load(verifier_key_text(value))
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise ValueError(f"{value[:80]}: {error}") from error
