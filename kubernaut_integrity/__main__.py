"""`python -m kubernaut_integrity DIR --public-key FILE...`: verify an exported period (retention
archives + seal files in DIR) with only the public key(s). Exit status 1 on any finding (a file
that is not what it should be is one), 2 when the command line is wrong (no such directory, a
key file that is not a key)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from kubernaut_integrity.archive_verification import archive_verify
from kubernaut_integrity.arguments import public_key_argument
from kubernaut_integrity.keys import public_keys_load


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m kubernaut_integrity",
        description="Verify audit archives (<partition>.jsonl.gz + .manifest.json) against the Ed25519-signed "
        "seal files beside them, with nothing but the trusted public key(s). Needs only Python and cryptography.",
    )
    parser.add_argument("directory", type=Path, help="the directory holding the archives, manifests and seal-*.json")
    public_key_argument(parser)
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    arguments = parser.parse_args(argv)
    if not arguments.directory.is_dir():
        parser.error(f"{arguments.directory} is not a directory")
    try:
        trusted = public_keys_load(arguments.public_keys)
    except (OSError, ValueError) as exc:
        parser.error(f"cannot load a public key: {exc}")
    report = archive_verify(arguments.directory, trusted)
    if arguments.json:
        print(json.dumps(report.as_json(), indent=2))
    else:
        for finding in report.findings:
            print(finding)
        verdict = "clean" if report.clean else f"{len(report.findings)} finding(s)"
        print(
            f"{verdict}: {report.archives} archive(s), {report.rows} row(s), {report.seals} seal(s),"
            f" {report.not_checkable} table part(s) needing partitions not in this export"
        )
    return 0 if report.clean else 1


if __name__ == "__main__":
    sys.exit(main())
