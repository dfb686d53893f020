"""`python -m kubernaut_integrity DIR --public-key FILE...`: verify an exported period (retention
archives + seal files in DIR) with only the public key(s). Exit status 1 on any finding (a file
that is not what it should be is one), 2 when the command line is wrong (no such directory, a
key file that is not a key).

`python -m kubernaut_integrity evidence FILE --public-key FILE... --log-key VKEY...`: check an
evidence bundle (`audit_evidence`) the same way: one verdict per check, exit status 1 naming
each record, seal or checkpoint that fails, 2 for a wrong command line."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from kubernaut_integrity.archive_verification import archive_verify
from kubernaut_integrity.arguments import (
    log_key_argument,
    log_verifiers_load,
    public_key_argument,
    tsa_root_argument,
    witness_key_argument,
    witness_verifiers_load,
)
from kubernaut_integrity.evidence import BUNDLE_MAX_BYTES
from kubernaut_integrity.evidence_verification import AuditorKeys, EvidenceReport, evidence_check
from kubernaut_integrity.files import FileRefusedError, read_bounded
from kubernaut_integrity.findings import EVIDENCE_MALFORMED
from kubernaut_integrity.keys import KEY_FILE_MAX_BYTES, public_keys_load
from kubernaut_integrity.timestamps import tsa_roots_load


def main(argv: list[str] | None = None) -> int:
    arguments_given = sys.argv[1:] if argv is None else argv
    if arguments_given[:1] == ["evidence"]:
        return evidence_main(arguments_given[1:])
    parser = argparse.ArgumentParser(
        prog="python -m kubernaut_integrity",
        description="Verify audit archives (<partition>.jsonl.zst or .jsonl.gz + .manifest.json) against the "
        "Ed25519-signed seal files beside them, with nothing but the trusted public key(s). Needs only Python, "
        "cryptography and zstandard.",
        epilog="An evidence bundle of one correlation id: python -m kubernaut_integrity evidence --help",
    )
    parser.add_argument("directory", type=Path, help="the directory holding the archives, manifests and seal-*.json")
    public_key_argument(parser)
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    arguments = parser.parse_args(arguments_given)
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


def evidence_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m kubernaut_integrity evidence",
        description="Check an evidence bundle (manage.py audit_evidence) with nothing but your own keys: every "
        "record's proof in its seal, every seal's signature and place in the seal log, every checkpoint's "
        "signature and consistency, cosignatures and RFC 3161 time anchors. One verdict per check; exit status 1 "
        "when any fails. Needs only Python, cryptography and rfc3161-client.",
    )
    parser.add_argument("file", type=Path, help="the evidence bundle (JSON)")
    public_key_argument(parser)
    log_key_argument(parser)
    witness_key_argument(parser)
    tsa_root_argument(parser)
    parser.add_argument(
        "--max-anchor-delay",
        type=float,
        default=None,
        metavar="S",
        help="fail a record no time anchor shows in the log within S seconds of its recorded_at (needs --tsa-root)",
    )
    parser.add_argument(
        "--checkpoint",
        dest="held",
        type=Path,
        action="append",
        default=[],
        metavar="FILE",
        help="a checkpoint (note) you kept earlier: the bundle must prove its latest checkpoint extends it",
    )
    parser.add_argument("--origin", default=None, help="the log's origin (default: the name of the --log-key keys)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    arguments = parser.parse_args(argv)
    if not arguments.file.is_file():
        parser.error(f"{arguments.file} is not a file")
    try:
        seal_keys = public_keys_load(arguments.public_keys)
        log_verifiers = log_verifiers_load(arguments.log_keys)
        witness_verifiers = witness_verifiers_load(arguments.witness_keys or [])
        tsa_roots = tsa_roots_load(arguments.tsa_roots or [])
        held = [read_bounded(path, KEY_FILE_MAX_BYTES) for path in arguments.held]
    except (OSError, ValueError) as exc:
        parser.error(f"cannot load a key, root or checkpoint: {exc}")
    if arguments.max_anchor_delay is not None and not tsa_roots:
        parser.error("--max-anchor-delay needs --tsa-root: an anchor is only believed when it chains to a root")
    origins = {verifier.name for verifier in log_verifiers}
    if arguments.origin is None and len(origins) != 1:
        parser.error("the log keys have different names: say which log with --origin")
    keys = AuditorKeys(
        seal_keys=seal_keys,
        log_verifiers=log_verifiers,
        origin=arguments.origin or origins.pop(),
        witness_verifiers=witness_verifiers,
        tsa_roots=tsa_roots,
    )
    try:
        data = read_bounded(arguments.file, BUNDLE_MAX_BYTES)
    except FileRefusedError as exc:
        report = EvidenceReport()
        report.fail(EVIDENCE_MALFORMED, "bundle", str(exc))
    else:
        report = evidence_check(data, keys=keys, max_anchor_delay=arguments.max_anchor_delay, held=held)
    if arguments.json:
        print(json.dumps(report.as_json(), indent=2))
    else:
        for verdict in report.verdicts:
            print(verdict)
        outcome = "clean" if report.clean else f"{len(report.findings)} check(s) failed"
        print(
            f"{outcome}: {report.rows} record(s) proven, {report.unsealed} not sealed yet, {report.seals} seal(s),"
            f" {report.checkpoints} checkpoint(s), {report.anchors} anchor(s), {report.cosignatures} cosignature(s)"
            f" in {report.seconds * 1000:.1f} ms"
        )
    return 0 if report.clean else 1


if __name__ == "__main__":
    sys.exit(main())
