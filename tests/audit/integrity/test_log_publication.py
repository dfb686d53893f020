"""After the sealing commit: a real loopback witness (the tlog-witness protocol's answers) cosigns
each new checkpoint, a real RFC 3161 authority (`openssl ts`) time-stamps the latest one every
AUDIT_ANCHOR_INTERVAL_SECONDS, and the checkpoint files are written; an unreachable witness or
authority only lags (metrics), a witness holding another history fails the run and is a finding."""

from __future__ import annotations

import datetime as dt
import io
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone
from prometheus_client import CollectorRegistry

from audit.integrity.log_publication import Authority, Witness, log_publish
from audit.integrity.metrics import SealCollector
from audit.models import AuditAnchor, AuditCheckpoint, AuditCheckpointCosignature, AuditSeal, AuditWitnessState
from kubernaut_integrity.checkpoint import checkpoint_open
from kubernaut_integrity.note import note_parse
from kubernaut_integrity.timestamps import timestamp_verify, tsa_roots_load
from testutils.admin_rows import remediation_chain
from testutils.evidence import SealedHistory, sealed_history
from testutils.integrity import LOG_ORIGIN, WINDOW_SECONDS, findings_of, seal_now, verify
from testutils.tlog_witness import TlogWitness
from testutils.tsa import TimestampAuthority

pytestmark = pytest.mark.django_db


@pytest.fixture
def history(tmp_path: Path, time_stamp_authority: TimestampAuthority) -> Iterator[SealedHistory]:
    history = sealed_history(tmp_path, witness=True, authority=time_stamp_authority)
    assert history.witness is not None
    try:
        yield history
    finally:
        history.witness.__exit__(None, None, None)


def _closed_port() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{probe.getsockname()[1]}"


def _sample(name: str, labels: dict[str, str] | None = None) -> float | None:
    registry = CollectorRegistry()
    registry.register(SealCollector())
    return registry.get_sample_value(name, labels or {})


def test_the_witness_cosigns_each_new_checkpoint_from_the_size_it_last_cosigned(history: SealedHistory) -> None:
    assert history.witness is not None
    remediation_chain()
    _, first = history.seal(ahead_seconds=2)
    later = timezone.now() + dt.timedelta(seconds=5)
    _, second = history.seal(now=later)
    assert first.cosigned_by == second.cosigned_by == [f"witness.test/w1+{history.witness.verifier.key_hash:08x}"]
    assert history.witness.answers == [200, 200]
    sizes = list(AuditCheckpoint.objects.order_by("size").values_list("size", flat=True))
    assert len(sizes) == 2
    assert history.witness.latest[LOG_ORIGIN][0] == sizes[-1]
    assert sorted(AuditCheckpointCosignature.objects.values_list("checkpoint_id", flat=True)) == sizes
    # The cosignature is appended to the checkpoint files, and verifies there.
    latest = (history.seal_dir / "checkpoint").read_bytes()
    assert latest == (history.seal_dir / "checkpoints" / f"checkpoint-{sizes[-1]:012d}").read_bytes()
    opened = checkpoint_open(
        latest, origin=LOG_ORIGIN, verifiers=[*(s.verifier for s in history.log.signers), history.witness.verifier]
    )
    assert [signature.name for signature in opened.note.verified] == [LOG_ORIGIN, "witness.test/w1"]
    # A run without a new checkpoint asks nothing.
    history.seal(now=later)
    assert history.witness.answers == [200, 200]


def test_a_witness_that_lost_track_is_answered_from_the_size_it_names(history: SealedHistory) -> None:
    """409: the witness cosigned another size than we remember; the client asks again from it."""
    assert history.witness is not None
    remediation_chain()
    history.seal(ahead_seconds=2)
    history.seal(ahead_seconds=5)
    AuditWitnessState.objects.update(cosigned_size=1)
    history.seal(ahead_seconds=8)
    assert history.witness.answers == [200, 200, 409, 200]
    assert AuditWitnessState.objects.get().cosigned_size == AuditCheckpoint.objects.order_by("-size")[0].size


# The metrics read the database on a connection of their own: the rows must be committed.
@pytest.mark.django_db(transaction=True)
def test_a_witness_holding_another_history_fails_the_run_and_is_a_finding(
    history: SealedHistory, settings: Any
) -> None:
    assert history.witness is not None
    remediation_chain()
    history.seal(ahead_seconds=2)
    size = AuditCheckpoint.objects.get().size
    # The witness cosigned, earlier, a tree of this size with another root: a fork.
    history.witness.latest[LOG_ORIGIN] = (size, b"\x05" * 32)
    AuditWitnessState.objects.update(cosigned_size=0)
    settings.AUDIT_SEAL_PRIVATE_KEY_FILE = str(history.seal_private)
    settings.AUDIT_LOG_PRIVATE_KEY_FILE = [str(history.log_vkey.parent / "log-signing-key")]
    settings.AUDIT_LOG_ORIGIN = LOG_ORIGIN
    settings.AUDIT_WITNESSES = [(history.witness.url, history.witness.verifier.vkey)]
    settings.AUDIT_SEAL_DIR = str(history.seal_dir)
    settings.AUDIT_SEAL_WINDOW_SECONDS = WINDOW_SECONDS
    settings.AUDIT_WRITE_MAX_LAG_SECONDS = 0
    err = io.StringIO()
    with pytest.raises(CommandError, match="holds a history this log does not extend"):
        call_command("audit_seal", "--settle-seconds", "0", stdout=io.StringIO(), stderr=err)
    state = AuditWitnessState.objects.get()
    assert state.outcome == AuditWitnessState.Outcome.INCONSISTENT
    witness = f"witness.test/w1+{history.witness.verifier.key_hash:08x}"
    assert _sample("kubernaut_audit_witness_inconsistent", {"witness": witness}) == 1.0
    settings.AUDIT_LOG_PUBLIC_KEY_FILES = [str(history.log_vkey)]
    clean, report = verify(history.seal_public, seal_dir=history.seal_dir)
    assert not clean
    assert ("witness_inconsistent", None, None, None) in findings_of(report)


# The metrics read the database on a connection of their own: the rows must be committed.
@pytest.mark.django_db(transaction=True)
def test_an_unreachable_witness_is_a_lag_not_a_failure(tmp_path: Path) -> None:
    history = sealed_history(tmp_path)
    remediation_chain()
    history.seal(ahead_seconds=2)
    witness = TlogWitness(name="witness.test/w9", logs={})
    down = Witness(url=_closed_port(), verifier=witness.verifier)
    publication = log_publish(seal_dir=history.seal_dir, witnesses=[down], authority=None)
    assert not publication.failed
    assert "unavailable" in publication.problems[0]
    state = AuditWitnessState.objects.get()
    assert (state.outcome, state.cosigned_size) == (AuditWitnessState.Outcome.UNAVAILABLE, 0)
    lag = _sample("kubernaut_audit_witness_lag_seconds", {"witness": down.key})
    assert lag is not None
    assert lag >= 0
    assert _sample("kubernaut_audit_witness_inconsistent", {"witness": down.key}) == 0.0


def test_the_latest_checkpoint_is_time_stamped_once_an_interval(
    history: SealedHistory, time_stamp_authority: TimestampAuthority
) -> None:
    remediation_chain()
    history.seal(ahead_seconds=2)
    anchor = AuditAnchor.objects.get()
    checkpoint = AuditCheckpoint.objects.get()
    body = note_parse(checkpoint.note.encode()).text.encode()
    stated = timestamp_verify(
        response=bytes(anchor.response), body=body, roots=tsa_roots_load([time_stamp_authority.ca_pem])
    )
    assert stated.gen_time == anchor.gen_time
    # Beside the checkpoint, for `openssl ts -verify -data <body>`: the body is the note up to its blank line.
    token = history.seal_dir / "checkpoints" / f"checkpoint-{checkpoint.size:012d}.tsr"
    note = token.with_suffix("")
    extracted = subprocess.run(["sed", "/^$/,$d", str(note)], capture_output=True, check=True).stdout
    assert extracted == body
    assert time_stamp_authority.openssl_verify(token.read_bytes(), extracted).returncode == 0
    # Within the interval the next checkpoint waits for the next anchor.
    authority = Authority(
        url=time_stamp_authority.url, roots=tsa_roots_load([time_stamp_authority.ca_pem]), interval_seconds=600
    )
    seal_now(history.seal_private, history.seal_dir, ahead_seconds=5, log=history.log)
    log_publish(seal_dir=history.seal_dir, witnesses=[], authority=authority)
    assert AuditAnchor.objects.count() == 1
    later = timezone.now() + dt.timedelta(seconds=601)
    log_publish(seal_dir=history.seal_dir, witnesses=[], authority=authority, now=later)
    assert AuditAnchor.objects.count() == 2


# The metrics read the database on a connection of their own: the rows must be committed.
@pytest.mark.real_clock
@pytest.mark.django_db(transaction=True)
def test_an_unreachable_authority_never_blocks_sealing_and_shows_as_a_lag(
    tmp_path: Path, time_stamp_authority: TimestampAuthority, settings: Any
) -> None:
    history = sealed_history(tmp_path)
    remediation_chain()
    settings.AUDIT_SEAL_PRIVATE_KEY_FILE = str(history.seal_private)
    settings.AUDIT_LOG_PRIVATE_KEY_FILE = [str(history.log_vkey.parent / "log-signing-key")]
    settings.AUDIT_LOG_ORIGIN = LOG_ORIGIN
    settings.AUDIT_SEAL_DIR = str(history.seal_dir)
    settings.AUDIT_SEAL_WINDOW_SECONDS = WINDOW_SECONDS
    settings.AUDIT_WRITE_MAX_LAG_SECONDS = 0
    settings.AUDIT_TSA_URL = _closed_port()
    settings.AUDIT_TSA_ROOT_FILES = [str(time_stamp_authority.ca_pem)]
    settings.AUDIT_WITNESSES = []
    time.sleep(1.1)
    err = io.StringIO()
    call_command("audit_seal", "--settle-seconds", "0", stdout=io.StringIO(), stderr=err)
    assert "not time-stamped (the next run retries)" in err.getvalue()
    assert AuditSeal.objects.exists()
    assert AuditCheckpoint.objects.exists()
    assert not AuditAnchor.objects.exists()
    time.sleep(1.1)
    lag = _sample("kubernaut_audit_anchor_lag_seconds")
    assert lag is not None
    assert lag >= 1.0
    settings.AUDIT_TSA_URL = time_stamp_authority.url
    call_command("audit_seal", "--settle-seconds", "0", stdout=io.StringIO(), stderr=io.StringIO())
    assert AuditAnchor.objects.exists()
    assert _sample("kubernaut_audit_anchor_lag_seconds") == 0.0
    settings.AUDIT_TSA_URL = ""
    assert _sample("kubernaut_audit_anchor_lag_seconds") is None
