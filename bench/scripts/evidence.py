"""Time evidence bundles (docs/INTEGRITY.md) against a seal log of --seals seals, on a scratch
database of the embedded PostgreSQL (never the test database, never production):

    export DJANGO_SETTINGS_MODULE=kubernaut_storage.settings.local
    export EMBEDDED_POSTGRES_DATABASE=kubernaut_evidence_bench
    .venv/bin/python bench/scripts/evidence.py --seals 100000 --rows-per-window 1000 --repeat 50

It empties the scratch database (it refuses one whose name does not end in `_bench`), then:

1. fills the seal log fast: --seals synthetic seals of empty windows (60 s each, ending a window
   before now), each signed and chained like real ones, with the log hashes a replay of their
   bodies gives (`MemoryLog`), and a signed checkpoint every --seals-per-run seals (one per
   sealing run), all sent with COPY;
2. writes one correlation id's records through the real write path, 10 records of the four
   audit tables in three consecutive windows (it waits for each: up to two windows' time), and
   --rows-per-window other remediation rows in each of those windows, in one INSERT;
3. seals those windows with `seal_pending` (a real checkpoint), then a loopback witness
   cosigns it and a real RFC 3161 authority (`openssl ts`) time-stamps it;
4. times `evidence_bundle` --repeat times (p50, p95, max), the bundle's size with and without
   the tokens, the offline check in process (per record) and as `python -m kubernaut_integrity
   evidence` in a fresh process, the seal log's storage (pg_column_size of log_hashes, and the
   checkpoints table per seal), and the seal log part of audit_verify at that size.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "kubernaut_storage.settings.local")

import django
from django.apps import apps

if not apps.ready:
    django.setup()

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.conf import settings
from django.db import connection
from django.utils import timezone

from audit.integrity.evidence import evidence_bundle
from audit.integrity.log_publication import Authority, Witness, log_publish
from audit.integrity.log_verification import LogTrust, seal_log_check
from audit.integrity.seal_log import LogSigning
from audit.integrity.sealing import seal_pending, window_floor
from audit.models import AuditKind
from kubernaut_integrity.canonical import SEALED_TABLES, timestamp_canonical, timestamp_parse
from kubernaut_integrity.checkpoint import Checkpoint, checkpoint_sign
from kubernaut_integrity.evidence import evidence_dumps
from kubernaut_integrity.evidence_verification import AuditorKeys, evidence_check
from kubernaut_integrity.keys import key_id, key_pair_write, log_key_write, private_key_load, public_keys_load
from kubernaut_integrity.note import signer_from_skey
from kubernaut_integrity.seals import GENESIS_PREVIOUS, seal_make, table_entry
from kubernaut_integrity.timestamps import tsa_roots_load
from kubernaut_integrity.tlog import MemoryLog, tree_hash
from testutils.admin_rows import bulk_remediations, remediation_chain, write
from testutils.factories import aianalysis_body, execution_body, remediation_body, workflow_body
from testutils.integrity import scratch_database_emptied
from testutils.tlog_witness import TlogWitness
from testutils.tsa import TimestampAuthority

ORIGIN = "kubernaut-storage.bench/audit-seals"
#: Seals sent per COPY.
BATCH = 10_000


@dataclass
class Figures:
    seals: int = 0
    bundle_seals: int = 0
    record_windows: int = 0
    records: int = 0
    unsealed: int = 0
    bundle_bytes: int = 0
    token_bytes: int = 0
    generation_ms: list[float] = field(default_factory=list)
    check_ms: list[float] = field(default_factory=list)
    process_check_ms: float = 0.0
    log_hashes_bytes_per_seal: float = 0.0
    checkpoints_bytes_per_seal: float = 0.0
    log_check_s: float = 0.0

    def as_json(self) -> dict[str, Any]:
        generation = sorted(self.generation_ms)
        return {
            "seals": self.seals,
            "bundle_seals": self.bundle_seals,
            "record_windows": self.record_windows,
            "records": self.records,
            "unsealed": self.unsealed,
            "bundle_bytes": self.bundle_bytes,
            "bundle_bytes_without_tokens": self.bundle_bytes - self.token_bytes,
            "generation_ms_p50": round(statistics.median(generation), 1),
            "generation_ms_p95": round(generation[max(0, round(0.95 * len(generation)) - 1)], 1),
            "generation_ms_max": round(generation[-1], 1),
            "check_ms_per_record": round(statistics.median(self.check_ms) / max(1, self.records), 2),
            "process_check_ms": round(self.process_check_ms, 1),
            "log_hashes_bytes_per_seal": round(self.log_hashes_bytes_per_seal, 1),
            "checkpoints_bytes_per_seal": round(self.checkpoints_bytes_per_seal, 1),
            "log_check_s": round(self.log_check_s, 2),
        }


def seals_fill(
    *,
    count: int,
    end: dt.datetime,
    window_seconds: int,
    private_key: Ed25519PrivateKey,
    signing: LogSigning,
    seals_per_run: int,
) -> None:
    """`count` chained, signed seals of empty windows ending at `end`, their log hashes, and a
    checkpoint every `seals_per_run` seals, by COPY."""
    log = MemoryLog()
    empty = {table: table_entry([], []) for table in SEALED_TABLES}
    step = dt.timedelta(seconds=window_seconds)
    start = end - count * step
    previous = GENESIS_PREVIOUS
    kid = key_id(private_key.public_key())
    raw = connection.connection
    assert raw is not None
    for first in range(1, count + 1, BATCH):
        rows = []
        for sequence in range(first, min(count, first + BATCH - 1) + 1):
            window_start = start + (sequence - 1) * step
            seal = seal_make(
                sequence=sequence,
                window_start=timestamp_canonical(window_start),
                window_end=timestamp_canonical(window_start + step),
                tables=empty,
                previous=previous,
                sealed_at=timestamp_canonical(window_start + 2 * step),
                private_key=private_key,
            )
            previous = seal.hash
            rows.append((sequence, window_start, window_start + step, seal))
        log.extend([seal.body_bytes for *_, seal in rows])
        with raw.cursor() as cursor:
            with cursor.copy(
                "COPY audit_seals (sequence, window_start, window_end, row_count, root, key_id, sealed_at, body,"
                " signature, log_hashes) FROM STDIN"
            ) as copy:
                for sequence, window_start, window_end, seal in rows:
                    copy.write_row(
                        (
                            sequence,
                            window_start,
                            window_end,
                            0,
                            seal.body["root"],
                            kid,
                            window_end + step,
                            seal.body_bytes.decode(),
                            seal.signature,
                            log.leaves[sequence - 1],
                        )
                    )
            with cursor.copy("COPY audit_checkpoints (size, root, note, created_at) FROM STDIN") as copy:
                for sequence, _, window_end, _ in rows:
                    if sequence % seals_per_run == 0 or sequence == count:
                        root = tree_hash(size=sequence, read=log.read)
                        note = checkpoint_sign(Checkpoint(ORIGIN, sequence, root), signing.signers)
                        copy.write_row((sequence, root, note.encode().decode(), window_end + step))


def records_write(*, window_seconds: int) -> tuple[str, dt.datetime, dt.datetime]:
    """Ten records of one correlation id through the real write path, in three consecutive
    windows (waiting for each): a remediation chain, then an analysis, a workflow and a
    remediation, then two executions. Returns the id and the windows' span [start, end)."""
    first = window_floor(timezone.now(), window_seconds)
    correlation_id = remediation_chain()["correlation_id"]
    common = {"correlationId": correlation_id}
    later = [
        [
            (AuditKind.REMEDIATION, remediation_body(**common)),
            (AuditKind.AI_ANALYSIS, aianalysis_body(**common)),
            (AuditKind.WORKFLOW, workflow_body(**common)),
        ],
        [(AuditKind.EXECUTION, execution_body(**common)), (AuditKind.EXECUTION, execution_body(**common))],
    ]
    for records in later:
        following = window_floor(timezone.now(), window_seconds) + dt.timedelta(seconds=window_seconds)
        time.sleep((following - timezone.now()).total_seconds() + 0.05)
        for kind, body in records:
            write(kind, body)
    return correlation_id, first, window_floor(timezone.now(), window_seconds) + dt.timedelta(seconds=window_seconds)


def history_make(
    *, seals: int, rows_per_window: int, seals_per_run: int, directory: Path, authority: TimestampAuthority
) -> tuple[str, AuditorKeys, list[str], LogSigning, TlogWitness]:
    """The filled log, one correlation id's records sealed, cosigned and anchored."""
    seal_private, seal_public, _ = key_pair_write(directory / "keys")
    log_private, log_vkey, _ = log_key_write(directory / "keys", ORIGIN)
    signing = LogSigning(ORIGIN, (signer_from_skey(log_private.read_text()),))
    window_seconds = settings.AUDIT_SEAL_WINDOW_SECONDS
    now = timezone.now()
    private_key = private_key_load(seal_private)
    started = time.perf_counter()
    seals_fill(
        count=seals,
        end=window_floor(now, window_seconds) - dt.timedelta(seconds=window_seconds),
        window_seconds=window_seconds,
        private_key=private_key,
        signing=signing,
        seals_per_run=seals_per_run,
    )
    print(f"filled {seals} seals in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    correlation_id, first, end = records_write(window_seconds=window_seconds)
    with connection.cursor() as cursor:
        cursor.execute("SET kubernaut.audit_max_write_lag = ''")
    bulk_remediations(
        count=rows_per_window * int((end - first).total_seconds()) // window_seconds,
        recorded_from=first,
        recorded_to=end,
        prefix="bench",
    )
    seal_pending(
        window_seconds=window_seconds,
        settle_seconds=0,
        private_key=private_key,
        seal_dir=directory / "seals",
        now=end,
        log=signing,
    )
    witness = TlogWitness(name="witness.bench/w1", logs={ORIGIN: [signing.signers[0].verifier]}).__enter__()
    roots = tsa_roots_load([authority.ca_pem])
    log_publish(
        seal_dir=directory / "seals",
        witnesses=[Witness(witness.url, witness.verifier)],
        authority=Authority(authority.url, roots, 0),
    )
    keys = AuditorKeys(
        seal_keys=public_keys_load([seal_public]),
        log_verifiers=[signing.signers[0].verifier],
        origin=ORIGIN,
        witness_verifiers=[witness.verifier],
        tsa_roots=roots,
    )
    arguments = [
        "--public-key", str(seal_public), "--log-key", str(log_vkey),
        "--witness-key", witness.verifier.vkey, "--tsa-root", str(authority.ca_pem),
    ]  # fmt: skip
    return correlation_id, keys, arguments, signing, witness


def measure(*, correlation_id: str, keys: AuditorKeys, arguments: list[str], repeat: int, directory: Path) -> Figures:
    figures = Figures()
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*), avg(pg_column_size(log_hashes)) FROM audit_seals")
        figures.seals, per_seal = cursor.fetchone()
        figures.log_hashes_bytes_per_seal = float(per_seal)
        cursor.execute("SELECT pg_total_relation_size('audit_checkpoints')")
        figures.checkpoints_bytes_per_seal = cursor.fetchone()[0] / figures.seals
    data = b""
    for _ in range(repeat):
        started = time.perf_counter()
        evidence = evidence_bundle(correlation_id=correlation_id)
        data = evidence_dumps(evidence.bundle)
        figures.generation_ms.append((time.perf_counter() - started) * 1000)
    bundle = json.loads(data)
    figures.records, figures.unsealed = len(bundle["records"]), len(bundle["unsealed"])
    figures.bundle_seals = len(bundle["seals"])
    moments = (timestamp_parse(json.loads(record["line"])["recorded_at"]) for record in bundle["records"])
    figures.record_windows = len({int(moment.timestamp()) // settings.AUDIT_SEAL_WINDOW_SECONDS for moment in moments})
    figures.bundle_bytes = len(data)
    figures.token_bytes = sum(len(anchor["token"]) for anchor in bundle["anchors"])
    for _ in range(repeat):
        report = evidence_check(data, keys=keys)
        assert report.clean, [str(verdict) for verdict in report.verdicts if verdict.status == "FAIL"]
        figures.check_ms.append(report.seconds * 1000)
    path = directory / "bundle.json"
    path.write_bytes(data)
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "kubernaut_integrity", "evidence", str(path), *arguments],
        cwd=REPO,
        check=True,
        capture_output=True,
    )
    figures.process_check_ms = (time.perf_counter() - started) * 1000
    started = time.perf_counter()
    findings = seal_log_check(
        trust=LogTrust(origin=ORIGIN, log_verifiers=keys.log_verifiers, tsa_roots=keys.tsa_roots), seal_dir=None
    )
    figures.log_check_s = time.perf_counter() - started
    assert not findings, findings[:3]
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seals", type=int, default=100_000, help="synthetic seals in the log before the records")
    parser.add_argument("--rows-per-window", type=int, default=1000, help="other rows in each window of the records")
    parser.add_argument("--seals-per-run", type=int, default=2, help="seals per checkpoint (per sealing run)")
    parser.add_argument("--repeat", type=int, default=50, help="bundles made, and checked, to time")
    arguments = parser.parse_args()
    scratch_database_emptied(now=timezone.now())
    with tempfile.TemporaryDirectory() as scratch, TimestampAuthority(Path(scratch) / "tsa") as authority:
        directory = Path(scratch)
        correlation_id, keys, auditor, _, witness = history_make(
            seals=arguments.seals,
            rows_per_window=arguments.rows_per_window,
            seals_per_run=arguments.seals_per_run,
            directory=directory,
            authority=authority,
        )
        try:
            with connection.cursor() as cursor:
                cursor.execute("ANALYZE")
            figures = measure(
                correlation_id=correlation_id,
                keys=keys,
                arguments=auditor,
                repeat=arguments.repeat,
                directory=directory,
            )
        finally:
            witness.__exit__(None, None, None)
    result = figures.as_json()
    print(json.dumps(result, indent=2))
    print(" ".join(f"{name}={value}" for name, value in result.items()))


if __name__ == "__main__":
    main()
