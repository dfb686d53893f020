"""What the verifiers do with a seal file padded with 267 MB of junk leaves (docs/SECURITY.md).

Run from the repo root, against a scratch database of the embedded PostgreSQL (never the test
database, never production):

    export DJANGO_SETTINGS_MODULE=kubernaut_storage.settings.local
    export EMBEDDED_POSTGRES_DATABASE=kubernaut_integrity_bench
    .venv/bin/python bench/scripts/hostile_seal_files.py [--checkout DIR ...] [--megabytes 267]

It writes an export without a database (archive, manifest and the seal covering it) and, in
the scratch database (it refuses a name not ending in `_bench`, then empties the sealed tables),
100 remediation rows sealed by `audit_seal`. In one seal file of each, the leaves of
audit_remediation are replaced with --megabytes of well-formed junk leaves (the rows
themselves stay intact). Then, for each --checkout (default: this one), it runs that
checkout's `python -m kubernaut_integrity` on the export and its `manage.py audit_verify` on
the database, each in a child process, and prints exit status, the last line of output,
seconds and the child's peak RSS.
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import io
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "kubernaut_storage.settings.local")

import django

django.setup()

from django.conf import settings
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from kubernaut_integrity.keys import key_pair_write
from testutils.integrity import scratch_database_emptied
from testutils.integrity_export import export_write

ROWS = 100
LOAD_SQL = """
INSERT INTO audit_remediation (recorded_at, name, namespace, phase, message, created_at, started_at, completed_at,
  correlation_id, labels, actor, request_id, content_sha256, payload, signal_type, signal_name, signal_namespace,
  target_type, target_name, target_namespace, environment, priority, fingerprint)
SELECT t, 'rr-' || n, 'payments', 'Completed', '', t, t, t, 'corr-' || n, '{}', 'bench', 'req-' || n,
  md5(n::text) || md5(n::text), '{}', 'prometheus', 'KubePodOOMKilled', 'payments', 'deployment', 'payments-api',
  'payments', 'production', 'P1', ''
FROM generate_series(1, %(rows)s) AS n, LATERAL (SELECT %(start)s::timestamptz + n * interval '1 second') AS at(t)
"""


def _pad(seal_file: Path, megabytes: int) -> None:
    """Replace audit_remediation's leaves with `megabytes` of base64 of well-formed junk leaves."""
    document = json.loads(seal_file.read_text())
    leaves = megabytes * 1_000_000 * 3 // 4 // 40
    document["leaves"]["audit_remediation"] = base64.b64encode(b"\x5a" * 40 * leaves).decode()
    seal_file.write_text(json.dumps(document, indent=1) + "\n")


def _run(command: list[str], *, cwd: Path) -> dict[str, object]:
    """Run a child under GNU time (a small process of its own, so the figure is the child's and
    not this process's memory copied into a fork); its exit status, last line of output,
    seconds and peak RSS."""
    env = {**os.environ, "EMBEDDED_POSTGRES_DIR": str(settings.DATABASES["default"]["EMBEDDED_POSTGRES"]["DATA_DIR"])}
    with tempfile.NamedTemporaryFile("r") as peak:
        started = time.perf_counter()
        done = subprocess.run(
            ["/usr/bin/time", "-f", "%M", "-o", peak.name, *command],
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        seconds = time.perf_counter() - started
        kilobytes = int(peak.read().split()[-1])
    lines = done.stdout.strip().splitlines() or done.stderr.strip().splitlines() or [""]
    return {
        "status": done.returncode,
        "last line": lines[-1][:160],
        "seconds": round(seconds, 2),
        "peak RSS MB": round(kilobytes / 1024),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkout", type=Path, action="append", help="a checkout to measure (repeatable)")
    parser.add_argument("--megabytes", type=int, default=267, help="size of the junk leaves")
    arguments = parser.parse_args()
    now = timezone.now()
    scratch_database_emptied(now=now)
    with connection.cursor() as cursor:
        cursor.execute("SET kubernaut.audit_max_write_lag = ''")  # these rows are dated in the past on purpose
        cursor.execute(LOAD_SQL, {"rows": ROWS, "start": now - dt.timedelta(minutes=30)})
    with tempfile.TemporaryDirectory() as scratch:
        export = export_write(Path(scratch) / "export")
        _pad(export.seal_file, arguments.megabytes)
        private, public, _ = key_pair_write(Path(scratch) / "keys")
        seal_dir = Path(scratch) / "seals"
        call_command("audit_seal", "--private-key", str(private), "--seal-dir", str(seal_dir), stdout=io.StringIO())
        with_rows = next(
            path
            for path in sorted(seal_dir.glob("seal-*.json"))
            if json.loads(json.loads(path.read_text())["body"])["tables"]["audit_remediation"]["count"]
        )
        _pad(with_rows, arguments.megabytes)
        print(
            f"export seal file: {export.seal_file.stat().st_size:,} bytes; {with_rows.name}: "
            f"{with_rows.stat().st_size:,} bytes"
        )
        for checkout in arguments.checkout or [REPO]:
            python = str(checkout / ".venv" / "bin" / "python")
            standalone = _run(
                [python, "-m", "kubernaut_integrity", str(export.directory), "--public-key", str(export.public_key)],
                cwd=checkout,
            )
            verify = _run(
                [
                    python,
                    "manage.py",
                    "audit_verify",
                    "--public-key",
                    str(public),
                    "--seal-dir",
                    str(seal_dir),
                    "--no-progress",
                ],
                cwd=checkout,
            )
            print(
                json.dumps(
                    {"checkout": str(checkout), "python -m kubernaut_integrity": standalone, "audit_verify": verify},
                    indent=1,
                )
            )


if __name__ == "__main__":
    main()
