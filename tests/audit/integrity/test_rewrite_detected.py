"""End to end, as a new user would: records written, sealed by the `audit_seal` command (a
checkpoint each run, time-stamped by a real RFC 3161 authority), `audit_evidence` for one
correlation id, the file checked by `python -m kubernaut_integrity evidence` in a process that
cannot import the service. Then the insider: one record changed as the database's superuser,
every seal, checkpoint and anchor deleted and made again with the stolen seal and log keys (and
fresh time stamps). `audit_verify` reports it, and so does the auditor holding the earlier
checkpoint, or only the authority's root and a bound on the anchoring delay."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from audit.integrity.log_publication import Authority, log_publish
from audit.integrity.sealing import seal_pending
from kubernaut_integrity.checkpoint import checkpoint_parse
from kubernaut_integrity.keys import private_key_load
from kubernaut_integrity.note import note_parse
from kubernaut_integrity.timestamps import tsa_roots_load
from testutils.admin_rows import remediation_chain
from testutils.evidence import next_window, sealed_history
from testutils.integrity import LOG_ORIGIN, WINDOW_SECONDS, findings_of, triggers_bypassed, verify
from testutils.tsa import TimestampAuthority

pytestmark = pytest.mark.django_db

REPOSITORY = Path(__file__).resolve().parents[3]
WITHOUT_THE_SERVICE = (
    "import sys\n"
    "for name in ('django', 'psycopg', 'rest_framework', 'audit', 'kubernaut_storage', 'embeddings'):\n"
    "    sys.modules[name] = None\n"
    "from kubernaut_integrity.__main__ import main\n"
    "sys.exit(main(sys.argv[1:]))\n"
)
#: The auditor's bound on how late a record may first be time-stamped (seconds).
MAX_ANCHOR_DELAY = 12


def _auditor_check(auditor: Path, bundle: str, *extra: str) -> subprocess.CompletedProcess[str]:
    """The offline check, run in the auditor's directory with only what the auditor was given."""
    keys = ["--public-key", "seal-public-key.pem", "--log-key", "log-key.vkey", "--tsa-root", "tsa-root.pem"]
    return subprocess.run(
        [sys.executable, "-c", WITHOUT_THE_SERVICE, "evidence", bundle, *keys, *extra],
        cwd=auditor,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPOSITORY)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _messages(bundle: Path) -> dict[tuple[str, int], str]:
    rows = (json.loads(record["line"]) for record in json.loads(bundle.read_text())["records"])
    return {(row["table"], row["id"]): row["message"] for row in rows}


@pytest.mark.real_clock
def test_a_rewrite_with_the_stolen_keys_is_reported(
    tmp_path: Path, time_stamp_authority: TimestampAuthority, settings: Any
) -> None:
    history = sealed_history(tmp_path / "service", authority=time_stamp_authority)
    settings.AUDIT_SEAL_PRIVATE_KEY_FILE = str(history.seal_private)
    settings.AUDIT_LOG_PRIVATE_KEY_FILE = [str(history.log_vkey.parent / "log-signing-key")]
    settings.AUDIT_LOG_ORIGIN = LOG_ORIGIN
    settings.AUDIT_LOG_PUBLIC_KEY_FILES = [str(history.log_vkey)]
    settings.AUDIT_SEAL_DIR = str(history.seal_dir)
    settings.AUDIT_SEAL_WINDOW_SECONDS = WINDOW_SECONDS
    settings.AUDIT_WRITE_MAX_LAG_SECONDS = 0
    settings.AUDIT_TSA_URL = time_stamp_authority.url
    settings.AUDIT_TSA_ROOT_FILES = [str(time_stamp_authority.ca_pem)]
    settings.AUDIT_ANCHOR_INTERVAL_SECONDS = 1
    settings.AUDIT_WITNESSES = []

    # --- a new user: write, seal (twice), make the bundle, hand it over ---------------------------
    chain = remediation_chain()
    correlation_id = chain["correlation_id"]
    next_window()
    call_command("audit_seal", "--settle-seconds", "0", stdout=io.StringIO(), stderr=io.StringIO())
    remediation_chain(correlation_id=correlation_id)
    next_window()
    time.sleep(settings.AUDIT_ANCHOR_INTERVAL_SECONDS)  # the next run is due to time-stamp again
    call_command("audit_seal", "--settle-seconds", "0", stdout=io.StringIO(), stderr=io.StringIO())
    auditor = tmp_path / "auditor"
    auditor.mkdir()
    out = io.StringIO()
    call_command(
        "audit_evidence", "--correlation-id", correlation_id, "--out", str(auditor / "before.json"), stdout=out
    )
    assert "10 record(s) with proofs, 0 not sealed yet" in out.getvalue()
    shutil.copy(history.seal_public, auditor / "seal-public-key.pem")
    shutil.copy(history.log_vkey, auditor / "log-key.vkey")
    shutil.copy(time_stamp_authority.ca_pem, auditor / "tsa-root.pem")
    shutil.copy(history.seal_dir / "checkpoint", auditor / "kept.checkpoint")
    kept_size = checkpoint_parse(note_parse((auditor / "kept.checkpoint").read_bytes()).text).size
    done = _auditor_check(
        auditor, "before.json", "--checkpoint", "kept.checkpoint", "--max-anchor-delay", str(MAX_ANCHOR_DELAY)
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "clean: 10 record(s) proven" in done.stdout
    clean, report = verify(history.seal_public, seal_dir=history.seal_dir)
    assert clean, report["findings"]

    # --- the insider, later: database superuser with both keys; the seal directory is WORM -------
    time.sleep(MAX_ANCHOR_DELAY + 1)
    target = chain["remediation"]
    with triggers_bypassed() as cursor:
        cursor.execute("UPDATE audit_remediation SET message = 'Nothing was changed.' WHERE id = %s", [target.id])
        cursor.execute(
            "DELETE FROM audit_checkpoint_cosignatures; DELETE FROM audit_anchors; DELETE FROM audit_checkpoints;"
            " DELETE FROM audit_witness_state; DELETE FROM audit_seals"
        )
    own_dir = tmp_path / "insider-seals"
    seal_pending(
        window_seconds=WINDOW_SECONDS,
        settle_seconds=0,
        private_key=private_key_load(history.seal_private),
        seal_dir=own_dir,
        log=history.log,
    )
    log_publish(
        seal_dir=own_dir,
        witnesses=[],
        authority=Authority(time_stamp_authority.url, tsa_roots_load([time_stamp_authority.ca_pem]), 0),
    )

    # audit_verify reports it: the row, and every checkpoint outside that the new log does not extend.
    clean, report = verify(history.seal_public, seal_dir=history.seal_dir)
    assert not clean
    assert ("row_modified", "audit_remediation", target.id) in {found[:3] for found in findings_of(report)}
    inconsistent = [f["detail"] for f in report["findings"] if f["kind"] == "checkpoint_inconsistent"]
    assert inconsistent
    assert any(
        detail.startswith(f"checkpoint {kept_size} (checkpoints/checkpoint-{kept_size:012d}, time-stamped ")
        and "is not a prefix of checkpoint " in detail
        for detail in inconsistent
    ), inconsistent
    with pytest.raises(CommandError):
        call_command("audit_verify", "--seal-dir", str(history.seal_dir), stdout=io.StringIO())

    # The auditor asks for a new bundle (with a proof from the checkpoint kept) and checks it.
    out = io.StringIO()
    call_command(
        "audit_evidence",
        "--correlation-id",
        correlation_id,
        "--consistent-from",
        str(kept_size),
        "--out",
        str(auditor / "after.json"),
        stdout=out,
    )
    done = _auditor_check(auditor, "after.json", "--checkpoint", "kept.checkpoint")
    assert done.returncode == 1, done.stdout
    (failure,) = [line for line in done.stdout.splitlines() if line.startswith("FAIL")]
    assert failure.startswith(f"FAIL  your checkpoint {kept_size}: ")
    assert "history was rewritten after your checkpoint was signed" in failure
    # Holding only the authority's root and a bound: every record was time-stamped too late.
    done = _auditor_check(auditor, "after.json", "--max-anchor-delay", str(MAX_ANCHOR_DELAY))
    assert done.returncode == 1, done.stdout
    late = [line for line in done.stdout.splitlines() if line.startswith("FAIL") and "time-stamped" in line]
    assert len(late) == 10
    assert any(line.startswith(f"FAIL  record audit_remediation {target.id}: first time-stamped") for line in late)
    # And the earlier bundle still proves what the record said when it was sealed.
    before, after = (_messages(auditor / name) for name in ("before.json", "after.json"))
    key = ("audit_remediation", target.id)
    assert before[key] != after[key] == "Nothing was changed."
