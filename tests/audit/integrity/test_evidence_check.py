"""`python -m kubernaut_integrity evidence`: a real bundle checked offline, in a process that
cannot import Django or a database driver, with keys from the command line only; one verdict
per check; exit status 1 naming each record, seal or checkpoint that fails, 2 for a wrong
command line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from kubernaut_integrity.__main__ import main
from kubernaut_integrity.arguments import log_verifiers_load
from kubernaut_integrity.checkpoint import Checkpoint, checkpoint_sign
from kubernaut_integrity.cosignature import Cosigner
from kubernaut_integrity.evidence import evidence_dumps
from kubernaut_integrity.evidence_verification import AuditorKeys, EvidenceReport, evidence_check
from kubernaut_integrity.keys import key_pair_write, log_key_write, public_keys_load
from kubernaut_integrity.note import signer_from_skey
from testutils.evidence import EvidenceCase
from testutils.integrity import LOG_ORIGIN

pytestmark = pytest.mark.django_db

REPOSITORY = Path(__file__).resolve().parents[3]
#: Runs the check where Django, psycopg and the project's runtime cannot be imported at all.
WITHOUT_THE_SERVICE = (
    "import sys\n"
    "for name in ('django', 'psycopg', 'rest_framework', 'audit', 'kubernaut_storage', 'embeddings'):\n"
    "    sys.modules[name] = None\n"
    "from kubernaut_integrity.__main__ import main\n"
    "sys.exit(main(sys.argv[1:]))\n"
)


def _offline(arguments: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", WITHOUT_THE_SERVICE, "evidence", *arguments],
        cwd=cwd,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPOSITORY)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _check(case: EvidenceCase, data: bytes, **options: Any) -> EvidenceReport:
    keys = options.pop("keys", None) or case.history.auditor_keys()
    return evidence_check(data, keys=keys, **options)


def _failures(report: EvidenceReport) -> list[str]:
    return [f"{verdict.subject}: {verdict.detail}" for verdict in report.verdicts if verdict.status == "FAIL"]


def _edited(case: EvidenceCase, edit: Any) -> bytes:
    bundle = json.loads(case.bundle)
    edit(bundle)
    return evidence_dumps(bundle)


def test_a_bundle_checks_clean_in_a_process_without_the_service(evidence_case: EvidenceCase, tmp_path: Path) -> None:
    (tmp_path / "bundle.json").write_bytes(evidence_case.bundle)
    (tmp_path / "kept.checkpoint").write_bytes(evidence_case.kept_checkpoint)
    done = _offline(
        ["bundle.json", *evidence_case.history.auditor_arguments(), "--checkpoint", "kept.checkpoint"], tmp_path
    )
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert lines[-1].startswith("clean: 10 record(s) proven, 5 not sealed yet, ")
    assert not [line for line in lines if line.startswith("FAIL")]
    # One verdict per check, naming what it checked.
    assert sum(line.startswith("ok    record audit_execution ") for line in lines) >= 4
    assert any(line.startswith("ok    your checkpoint ") for line in lines)
    assert sum(line.startswith("ok    anchor of checkpoint ") for line in lines) >= 2
    assert any(line.startswith("ok    witness witness.test/w1+") for line in lines)
    assert sum(line.startswith("skip  record ") and "not sealed yet" in line for line in lines) == 5
    # The same check reports as JSON, verdicts included.
    done = _offline(["bundle.json", *evidence_case.history.auditor_arguments(), "--json"], tmp_path)
    report = json.loads(done.stdout)
    assert (report["clean"], report["rows"], report["unsealed"], report["findings"]) == (True, 10, 5, [])
    assert report["seals"] >= 2
    assert report["anchors"] >= 2
    assert report["cosignatures"] >= 1


def test_the_process_really_cannot_import_django(tmp_path: Path) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            WITHOUT_THE_SERVICE.replace("from kubernaut_integrity", "import django\nfrom kubernaut_integrity"),
        ],
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPOSITORY)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert "ModuleNotFoundError" in done.stderr or "ImportError" in done.stderr


def test_keys_come_from_the_command_line_only(evidence_case: EvidenceCase, tmp_path: Path) -> None:
    """Other keys than the ones that signed: every seal and checkpoint fails, by name."""
    _, other_public, _ = key_pair_write(tmp_path / "other")
    _, other_vkey, _ = log_key_write(tmp_path / "other", LOG_ORIGIN)
    keys = evidence_case.history.auditor_keys()
    report = _check(
        evidence_case,
        evidence_case.bundle,
        keys=AuditorKeys(
            seal_keys=public_keys_load([other_public]),
            log_verifiers=log_verifiers_load([str(other_vkey)]),
            origin=LOG_ORIGIN,
            tsa_roots=keys.tsa_roots,
        ),
    )
    kinds = {finding.kind for finding in report.findings}
    assert kinds >= {"seal_unknown_key", "checkpoint_invalid", "checkpoint_missing", "record_unproven"}
    assert report.rows == 0
    assert {finding.seal for finding in report.findings if finding.kind == "seal_unknown_key"} == {
        json.loads(seal["body"])["sequence"] for seal in json.loads(evidence_case.bundle)["seals"]
    }


def test_a_checkpoint_kept_from_another_history_is_reported_with_both_sizes(
    evidence_case: EvidenceCase, tmp_path: Path
) -> None:
    """A checkpoint the auditor kept, of a tree the bundle's latest does not extend (a fork, or a
    rewrite after it was signed): named with its size and the latest's."""
    signer = signer_from_skey((evidence_case.history.log_vkey.parent / "log-signing-key").read_text())
    forked = checkpoint_sign(Checkpoint(LOG_ORIGIN, evidence_case.kept_size, b"\x07" * 32), [signer]).encode()
    report = _check(evidence_case, evidence_case.bundle, held=[forked])
    latest = json.loads(evidence_case.bundle)["checkpoints"][-1]["note"].split("\n")[1]
    assert _failures(report) == [
        f"your checkpoint {evidence_case.kept_size}: the bundle's checkpoint {evidence_case.kept_size} has another"
        f" root: checkpoint {latest} does not extend it; history was rewritten after your checkpoint was signed"
    ]
    # Without a proof from its size the bundle cannot show it either way: a failure, saying what to ask for.
    bundle = _edited(evidence_case, lambda b: (b.update(consistency=[]), b["checkpoints"].pop(0)))
    report = _check(evidence_case, bundle, held=[evidence_case.kept_checkpoint])
    assert any(f"--consistent-from {evidence_case.kept_size}" in failure for failure in _failures(report))


def test_max_anchor_delay_names_records_anchored_too_late(evidence_case: EvidenceCase) -> None:
    report = _check(evidence_case, evidence_case.bundle, max_anchor_delay=3600)
    assert report.clean, _failures(report)
    assert (
        sum("time-stamped" in verdict.detail and verdict.subject.startswith("record") for verdict in report.verdicts)
        == 10
    )
    report = _check(evidence_case, evidence_case.bundle, max_anchor_delay=0)
    late = {(finding.table, finding.row_id) for finding in report.findings if finding.kind == "anchor_late"}
    assert len(late) == 10
    # Without the anchors, no record is shown in the log in time.
    report = _check(evidence_case, _edited(evidence_case, lambda b: b.update(anchors=[])), max_anchor_delay=3600)
    assert len([finding for finding in report.findings if finding.kind == "anchor_late"]) == 10


def test_a_sealed_record_cannot_hide_among_the_unsealed(evidence_case: EvidenceCase) -> None:
    def move(bundle: dict[str, Any]) -> None:
        record = bundle["records"].pop(0)
        bundle["unsealed"].append({"line": record["line"]})

    report = _check(evidence_case, _edited(evidence_case, move))
    (failure,) = _failures(report)
    assert "listed as unsealed, but recorded" in failure
    assert "within sealed history" in failure
    # Nor can the unsealed ones be shown unsealed without the log's last seal.
    report = _check(evidence_case, _edited(evidence_case, lambda b: b["seals"].pop()))
    assert len([failure for failure in _failures(report) if "lacks seal" in failure]) == 5


def test_a_witness_that_did_not_cosign_is_a_failure(evidence_case: EvidenceCase) -> None:
    stranger = Cosigner(name="witness.test/w2", private_key=Ed25519PrivateKey.generate())
    keys = evidence_case.history.auditor_keys()
    report = _check(
        evidence_case,
        evidence_case.bundle,
        keys=AuditorKeys(
            seal_keys=keys.seal_keys,
            log_verifiers=keys.log_verifiers,
            origin=keys.origin,
            witness_verifiers=[*keys.witness_verifiers, stranger.verifier],
            tsa_roots=keys.tsa_roots,
        ),
    )
    assert _failures(report) == [
        f"witness witness.test/w2+{stranger.verifier.key_hash:08x}: no cosignature on a checkpoint holding seal"
        f" {max(json.loads(s['body'])['sequence'] for s in json.loads(evidence_case.bundle)['seals'])}, the newest here"
    ]


def test_anchors_without_a_root_are_not_believed(evidence_case: EvidenceCase) -> None:
    keys = evidence_case.history.auditor_keys()
    report = _check(
        evidence_case,
        evidence_case.bundle,
        keys=AuditorKeys(seal_keys=keys.seal_keys, log_verifiers=keys.log_verifiers, origin=keys.origin),
    )
    assert report.clean
    assert report.anchors == 0
    assert all(
        verdict.status == "skip" for verdict in report.verdicts if verdict.subject.startswith("anchor of checkpoint")
    )


@pytest.mark.parametrize(
    ("junk", "expected"),
    [
        (b"", "not UTF-8 JSON"),
        (b"\xff\xfe", "not UTF-8 JSON"),
        (b"[" * 100_000 + b"]" * 100_000, "not UTF-8 JSON"),
        (b'{"format": "kubernaut-audit-evidence/1", "format": "x"}', "a member appears twice"),
        (b'{"format": "something else"}', "not a kubernaut-audit-evidence/1 bundle"),
    ],
)
def test_a_file_that_is_not_a_bundle_is_one_failure(evidence_case: EvidenceCase, junk: bytes, expected: str) -> None:
    report = _check(evidence_case, junk)
    (failure,) = _failures(report)
    assert failure.startswith("bundle: ")
    assert expected in failure


def test_wrong_command_lines_exit_2(
    evidence_case: EvidenceCase, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bundle = tmp_path / "bundle.json"
    bundle.write_bytes(evidence_case.bundle)
    arguments = evidence_case.history.auditor_arguments()
    seal_only = arguments[:2]
    for wrong in (
        ["evidence", str(bundle), *seal_only],  # no --log-key
        ["evidence", str(tmp_path / "missing.json"), *arguments],
        ["evidence", str(bundle), *seal_only, "--log-key", "not a key"],
        [
            "evidence",
            str(bundle),
            *seal_only,
            "--log-key",
            str(evidence_case.history.log_vkey),
            "--max-anchor-delay",
            "60",
        ],
    ):
        with pytest.raises(SystemExit) as exit_status:
            main(wrong)
        assert exit_status.value.code == 2, wrong
    assert main(["evidence", str(bundle), *arguments]) == 0
    capsys.readouterr()
    bundle.write_bytes(evidence_case.bundle.replace(b'"index": 0', b'"index": 1', 1))
    assert main(["evidence", str(bundle), *arguments]) == 1
    out = capsys.readouterr().out
    assert out.count("FAIL  record ") == 1
