"""Command-line arguments shared by `python -m kubernaut_integrity` and the integrity
management commands, so each is declared (and documented) once."""

from __future__ import annotations

import argparse
from pathlib import Path


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
