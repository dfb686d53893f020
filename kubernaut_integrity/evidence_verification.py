"""An evidence bundle (`evidence.py`) checked with nothing but the auditor's own keys: the seal
keys, the log's verifier keys and, optionally, witnesses' keys and time-stamp authorities' roots.
The bundle supplies data, never trust: a key, size or root is believed only when it comes from
the command line or from a note or seal body signed by a key from it.

One verdict per check, in this order:

1. each checkpoint: signed by a trusted log key (a signature naming a trusted key but another
   key hash fails: every key of a rotation must be given), each cosignature by a trusted
   witness valid; each earlier checkpoint consistent with the latest;
2. each checkpoint the auditor kept (`--checkpoint`): the same root as the bundle's checkpoint
   of its size, or a consistency proof from it to the latest;
3. each time anchor: an RFC 3161 answer over its checkpoint's body, chaining to a trusted root;
4. each seal: signed by a trusted seal key, and leaf `sequence - 1` of the latest checkpoint;
   whether a time anchor covers it (a checkpoint at least as large, consistent with the latest);
5. each witness given: a cosignature on a checkpoint that holds every seal of the bundle;
6. each record: a canonical line of the bundle's correlation id (within its time range), and
   the leaf `index` of its table's tree in the seal whose window holds its recorded_at, that
   tree's size and root being the ones the seal signed; with `max_anchor_delay`, time-stamped
   no later than that many seconds after it was recorded;
7. each record listed as unsealed: recorded after the log's last seal ends (else sealed history
   would be hiding a record without its proof).

Any failure is also a finding naming the record (table and id), the seal or the checkpoint.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from kubernaut_integrity.canonical import FormError, line_identity, row_hash, timestamp_canonical, timestamp_parse
from kubernaut_integrity.checkpoint import Checkpoint, checkpoint_consistency_check, checkpoint_open
from kubernaut_integrity.cosignature import CosignatureVerifier, cosignature_time
from kubernaut_integrity.evidence import BUNDLE_MAX_BYTES, EVIDENCE_FORMAT
from kubernaut_integrity.findings import (
    ANCHOR_INVALID,
    ANCHOR_LATE,
    CHECKPOINT_INCONSISTENT,
    CHECKPOINT_INVALID,
    CHECKPOINT_MISSING,
    COSIGNATURE_MISSING,
    EVIDENCE_MALFORMED,
    RECORD_UNPROVEN,
    SEAL_BAD_SIGNATURE,
    SEAL_MALFORMED,
    SEAL_NOT_IN_LOG,
    SEAL_UNKNOWN_KEY,
    Finding,
    Report,
    WindowIndex,
)
from kubernaut_integrity.note import NoteError, Signature, Verifier, b64decode_canonical
from kubernaut_integrity.seals import MalformedSealError, Seal, body_parse
from kubernaut_integrity.timestamps import TimestampError, timestamp_verify
from kubernaut_integrity.tlog import HASH_SIZE, ProofError, inclusion_verify, leaf_hash

OK, FAILED, SKIPPED = "ok", "FAIL", "skip"
#: A proof in a log of up to 2**63 leaves has at most 63 hashes (the witness protocol's bound).
MAX_PROOF_HASHES = 63
#: An RFC 3161 answer with its certificate is a few kilobytes.
MAX_TOKEN_BYTES = 256 * 1024
#: An Ed25519 signature.
SIGNATURE_BYTES = 64


@dataclass(frozen=True, slots=True)
class Verdict:
    status: str  # OK, FAILED or SKIPPED (nothing to check it with, or nothing to prove)
    subject: str
    detail: str

    def __str__(self) -> str:
        return f"{self.status:<4}  {self.subject}: {self.detail}"

    def as_json(self) -> dict[str, str]:
        return {"status": self.status, "subject": self.subject, "detail": self.detail}


@dataclass
class EvidenceReport(Report):
    """`rows` counts the records proven; `unsealed` those listed as not sealed yet."""

    verdicts: list[Verdict] = field(default_factory=list)
    unsealed: int = 0
    checkpoints: int = 0
    anchors: int = 0
    cosignatures: int = 0
    seconds: float = 0.0

    def coverage(self) -> dict[str, Any]:
        return {
            **super().coverage(),
            "unsealed": self.unsealed,
            "checkpoints": self.checkpoints,
            "anchors": self.anchors,
            "cosignatures": self.cosignatures,
            "seconds": round(self.seconds, 4),
        }

    def as_json(self) -> dict[str, Any]:
        return {**super().as_json(), "verdicts": [verdict.as_json() for verdict in self.verdicts]}

    def ok(self, subject: str, detail: str) -> None:
        self.verdicts.append(Verdict(OK, subject, detail))

    def skip(self, subject: str, detail: str) -> None:
        self.verdicts.append(Verdict(SKIPPED, subject, detail))

    def fail(
        self,
        kind: str,
        subject: str,
        detail: str,
        *,
        table: str | None = None,
        row_id: int | None = None,
        seal: int | None = None,
    ) -> None:
        self.verdicts.append(Verdict(FAILED, subject, detail))
        located = table is not None or seal is not None
        self.findings.append(Finding(kind, detail if located else f"{subject}: {detail}", table, row_id, seal))


@dataclass(frozen=True, slots=True)
class AuditorKeys:
    """What the auditor trusts, from their own command line."""

    seal_keys: Mapping[str, Ed25519PublicKey]
    log_verifiers: Sequence[Verifier]
    origin: str
    witness_verifiers: Sequence[CosignatureVerifier] = ()
    tsa_roots: Sequence[x509.Certificate] = ()


class _MalformedError(ValueError):
    """A member of the bundle that is not what the format says."""


def _refuse_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    names = [name for name, _ in pairs]
    if len(set(names)) != len(names):
        raise _MalformedError("a member appears twice in one object")
    return dict(pairs)


def _member(entry: Any, name: str) -> Any:
    if not isinstance(entry, dict):
        raise _MalformedError("not a JSON object")
    if name not in entry:
        raise _MalformedError(f"no {name!r}")
    return entry[name]


def _text(entry: Any, name: str) -> str:
    value = _member(entry, name)
    if not isinstance(value, str):
        raise _MalformedError(f"{name!r} is not a string")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise _MalformedError(f"{name!r} is not UTF-8 text") from None
    return value


def _size(entry: Any, name: str) -> int:
    value = _member(entry, name)
    if type(value) is not int or value < 0:
        raise _MalformedError(f"{name!r} is not a whole number")
    return value


def _binary(entry: Any, name: str, limit: int) -> bytes:
    text = _text(entry, name)
    if len(text) > limit * 4 // 3 + 4:
        raise _MalformedError(f"{name!r} is longer than {limit} bytes")
    try:
        return b64decode_canonical(text)
    except NoteError as error:
        raise _MalformedError(f"{name!r}: {error}") from None


def _hashes(entry: Any, name: str) -> list[bytes]:
    value = _member(entry, name)
    if not isinstance(value, list) or len(value) > MAX_PROOF_HASHES:
        raise _MalformedError(f"{name!r} is not a list of at most {MAX_PROOF_HASHES} hashes")
    hashes = [_binary({name: item}, name, HASH_SIZE) for item in value]
    if any(len(digest) != HASH_SIZE for digest in hashes):
        raise _MalformedError(f"{name!r} holds something other than {HASH_SIZE}-byte hashes")
    return hashes


def _moment(value: Any, name: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise _MalformedError(f"{name!r} is neither null nor a timestamp")
    try:
        timestamp_canonical(timestamp_parse(value))
    except (ValueError, FormError):
        raise _MalformedError(f"{name!r} is not a timestamp") from None
    return value


def _line_row(line: str) -> tuple[str, int, str, Any]:
    """(table, id, recorded_at, correlation_id) of a canonical line."""
    try:
        row_id, recorded_at = line_identity(line)
    except FormError as error:
        raise _MalformedError(str(error)) from None
    row = json.loads(line)
    if not isinstance(row.get("table"), str):
        raise _MalformedError(f"a line without a table: {line[:80]!r}")
    return row["table"], row_id, recorded_at, row.get("correlation_id")


@dataclass(frozen=True, slots=True)
class _Bundle:
    correlation_id: str
    time_from: str | None
    time_to: str | None
    members: dict[str, list[Any]]


_LISTS = ("checkpoints", "anchors", "seals", "records", "unsealed", "consistency")


def _bundle_read(data: bytes, report: EvidenceReport) -> _Bundle | None:
    try:
        if len(data) > BUNDLE_MAX_BYTES:
            raise _MalformedError(f"{len(data)} bytes, more than the {BUNDLE_MAX_BYTES} a bundle can have")
        try:
            bundle = json.loads(data.decode("utf-8"), object_pairs_hook=_refuse_duplicates)
        except (UnicodeDecodeError, ValueError, RecursionError) as error:
            raise _MalformedError(f"not UTF-8 JSON: {str(error)[:200]}") from None
        if _member(bundle, "format") != EVIDENCE_FORMAT:
            raise _MalformedError(f"not a {EVIDENCE_FORMAT} bundle")
        members = {name: _member(bundle, name) for name in _LISTS}
        if not all(isinstance(value, list) for value in members.values()):
            raise _MalformedError(f"{', '.join(_LISTS)} are lists")
        return _Bundle(
            correlation_id=_text(bundle, "correlation_id"),
            time_from=_moment(_member(bundle, "from"), "from"),
            time_to=_moment(_member(bundle, "to"), "to"),
            members=members,
        )
    except _MalformedError as error:
        report.fail(EVIDENCE_MALFORMED, "bundle", str(error))
        return None


def _key_name(signature: Signature | Verifier) -> str:
    return f"{signature.name}+{signature.key_hash:08x}"


def _iso(moment: dt.datetime) -> str:
    return timestamp_canonical(moment)


class _Check:
    def __init__(self, bundle: _Bundle, keys: AuditorKeys, report: EvidenceReport) -> None:
        self.bundle = bundle
        self.keys = keys
        self.report = report
        self.latest: Checkpoint | None = None
        #: Checkpoints signed by a trusted log key and consistent with the latest, by size.
        self.checkpoints: dict[int, Checkpoint] = {}
        #: Per trusted witness key: the sizes of the good checkpoints it cosigned.
        self.cosigned: dict[tuple[str, int], set[int]] = {}
        #: Earliest verified time anchor per good checkpoint size.
        self.anchored: dict[int, dt.datetime] = {}
        #: Seals signed by a trusted key and in the latest checkpoint, by sequence: their bodies.
        self.seals: dict[int, dict[str, Any]] = {}

    def items(self, name: str) -> list[Any]:
        return self.bundle.members[name]

    # --- 1. checkpoints ---------------------------------------------------------------------------

    def checkpoints_check(self) -> None:
        keys, report = self.keys, self.report
        log_keys = {(verifier.name, verifier.key_hash) for verifier in keys.log_verifiers}
        witness_keys = {(verifier.name, verifier.key_hash) for verifier in keys.witness_verifiers}
        trusted_names = {name for name, _ in log_keys | witness_keys}
        opened: list[tuple[Checkpoint, list[Signature], list[bytes]]] = []
        for position, entry in enumerate(self.items("checkpoints")):
            subject = f"checkpoint #{position + 1}"
            try:
                note = _text(entry, "note").encode()
                proof = _hashes(entry, "proof")
                checkpoint_note = checkpoint_open(
                    note, origin=keys.origin, verifiers=[*keys.log_verifiers, *keys.witness_verifiers]
                )
            except (_MalformedError, NoteError) as error:
                report.fail(CHECKPOINT_INVALID, subject, str(error))
                continue
            checkpoint, verified = checkpoint_note.checkpoint, checkpoint_note.note.verified
            subject = f"checkpoint {checkpoint.size}"
            signers = [signature for signature in verified if signature.key in log_keys]
            stray = [signature for signature in checkpoint_note.note.unverified if signature.name in trusted_names]
            if not signers:
                report.fail(CHECKPOINT_INVALID, subject, "no signature by a trusted log key")
                continue
            if stray:
                report.fail(
                    CHECKPOINT_INVALID,
                    subject,
                    f"signed by {_key_name(stray[0])}, a key of a trusted name you did not give"
                    " (give every key of a rotation)",
                )
                continue
            report.ok(subject, f"signed by {', '.join(_key_name(signature) for signature in signers)}")
            cosignatures = [signature for signature in verified if signature.key in witness_keys]
            for signature in cosignatures:
                moment = dt.datetime.fromtimestamp(cosignature_time(signature), tz=dt.UTC)
                report.ok(subject, f"cosigned by witness {_key_name(signature)} at {_iso(moment)}")
            for signature in checkpoint_note.note.unverified:
                report.skip(subject, f"signature by {_key_name(signature)} not checked: a key you did not give")
            opened.append((checkpoint, cosignatures, proof))
        report.checkpoints = len(opened)
        if not opened:
            report.fail(CHECKPOINT_MISSING, "bundle", "no checkpoint signed by a trusted log key")
            return
        latest = max((checkpoint for checkpoint, _, _ in opened), key=lambda checkpoint: checkpoint.size)
        forks = {
            checkpoint.size
            for checkpoint, _, _ in opened
            for other, _, _ in opened
            if checkpoint.size == other.size and checkpoint.root != other.root
        }
        for size in sorted(forks):
            report.fail(CHECKPOINT_INCONSISTENT, f"checkpoint {size}", "two checkpoints of this size, two roots")
        if latest.size in forks:
            return
        self.latest = latest
        for checkpoint, cosignatures, proof in opened:
            if checkpoint.size in forks:
                continue
            subject = f"checkpoint {checkpoint.size}"
            if checkpoint.size != latest.size:
                try:
                    checkpoint_consistency_check(old=checkpoint, new=latest, proof=proof)
                except ProofError as error:
                    report.fail(CHECKPOINT_INCONSISTENT, subject, f"not a prefix of checkpoint {latest.size}: {error}")
                    continue
                report.ok(subject, f"consistent with checkpoint {latest.size}")
            elif proof:
                report.fail(CHECKPOINT_INVALID, subject, "the latest checkpoint carries a consistency proof")
                continue
            self.checkpoints[checkpoint.size] = checkpoint
            report.cosignatures += len(cosignatures)
            for signature in cosignatures:
                self.cosigned.setdefault(signature.key, set()).add(checkpoint.size)

    # --- 2. checkpoints the auditor kept ---------------------------------------------------------

    def held_check(self, held: Sequence[bytes]) -> None:
        report, latest = self.report, self.latest
        proofs: dict[int, list[list[bytes]]] = {}
        for position, entry in enumerate(self.items("consistency")):
            try:
                proofs.setdefault(_size(entry, "from"), []).append(_hashes(entry, "proof"))
            except _MalformedError as error:
                report.fail(EVIDENCE_MALFORMED, f"consistency proof #{position + 1}", str(error))
        sizes_held = set()
        for position, data in enumerate(held):
            try:
                opened = checkpoint_open(data, origin=self.keys.origin, verifiers=self.keys.log_verifiers)
            except NoteError as error:
                report.fail(CHECKPOINT_INVALID, f"your checkpoint #{position + 1}", str(error))
                continue
            checkpoint = opened.checkpoint
            sizes_held.add(checkpoint.size)
            subject = f"your checkpoint {checkpoint.size}"
            if latest is None:
                report.fail(CHECKPOINT_MISSING, subject, "the bundle has no good checkpoint to compare it with")
            elif checkpoint.size >= latest.size:
                if checkpoint.size == latest.size and checkpoint.root == latest.root:
                    report.ok(subject, "the bundle's latest checkpoint")
                else:
                    report.fail(
                        CHECKPOINT_INCONSISTENT,
                        subject,
                        f"the bundle's latest checkpoint {latest.size} does not extend it: history was rewritten"
                        " or lost after it was signed",
                    )
            else:
                self._held_extended(subject, checkpoint, proofs.get(checkpoint.size, []))
        for size in sorted(proofs.keys() - sizes_held):
            report.skip(f"consistency proof from {size}", "no checkpoint of that size given (--checkpoint) to check")

    def _held_extended(self, subject: str, checkpoint: Checkpoint, proofs: list[list[bytes]]) -> None:
        """A kept checkpoint older than the latest: the bundle's checkpoint of its size, or a
        consistency proof from its size, must show the latest extends it, and none may deny it."""
        latest = self.latest
        assert latest is not None
        shown, problems = [], []
        same = self.checkpoints.get(checkpoint.size)
        if same is not None:
            if same.root == checkpoint.root:
                shown.append(f"the bundle's checkpoint {checkpoint.size}, consistent with it")
            else:
                problems.append(f"the bundle's checkpoint {checkpoint.size} has another root")
        for proof in proofs:
            try:
                checkpoint_consistency_check(old=checkpoint, new=latest, proof=proof)
            except ProofError as error:
                problems.append(f"the consistency proof from it does not hold ({error})")
            else:
                shown.append("a consistency proof from it")
        if problems:
            self.report.fail(
                CHECKPOINT_INCONSISTENT,
                subject,
                f"{problems[0]}: checkpoint {latest.size} does not extend it; history was rewritten after your"
                " checkpoint was signed",
            )
        elif shown:
            self.report.ok(subject, f"checkpoint {latest.size} extends it: {'; '.join(shown)}")
        else:
            self.report.fail(
                CHECKPOINT_MISSING,
                subject,
                f"the bundle holds no proof that checkpoint {latest.size} extends it: make the bundle with"
                f" --consistent-from {checkpoint.size}",
            )

    # --- 3. time anchors ------------------------------------------------------------------------

    def anchors_check(self) -> None:
        report = self.report
        for position, entry in enumerate(self.items("anchors")):
            try:
                size = _size(entry, "checkpoint")
                token = _binary(entry, "token", MAX_TOKEN_BYTES)
            except _MalformedError as error:
                report.fail(ANCHOR_INVALID, f"anchor #{position + 1}", str(error))
                continue
            subject = f"anchor of checkpoint {size}"
            checkpoint = self.checkpoints.get(size)
            if checkpoint is None:
                report.fail(ANCHOR_INVALID, subject, "no good checkpoint of this size in the bundle")
                continue
            if not self.keys.tsa_roots:
                report.skip(subject, "not checked: no --tsa-root given")
                continue
            try:
                anchor = timestamp_verify(response=token, body=checkpoint.body.encode(), roots=self.keys.tsa_roots)
            except TimestampError as error:
                report.fail(ANCHOR_INVALID, subject, str(error))
                continue
            report.anchors += 1
            report.ok(subject, f"time-stamped {_iso(anchor.gen_time)} (serial {anchor.serial_number})")
            earliest = self.anchored.get(size)
            self.anchored[size] = anchor.gen_time if earliest is None else min(earliest, anchor.gen_time)

    def anchor_of(self, sequence: int) -> tuple[int, dt.datetime] | None:
        """The earliest anchor of a good checkpoint holding seal `sequence`: (size, time)."""
        covering = [(moment, size) for size, moment in self.anchored.items() if size >= sequence]
        if not covering:
            return None
        moment, size = min(covering)
        return size, moment

    # --- 4. seals ---------------------------------------------------------------------------------

    def seals_check(self) -> None:
        report, latest = self.report, self.latest
        for position, entry in enumerate(self.items("seals")):
            subject = f"seal #{position + 1}"
            try:
                body_bytes = _text(entry, "body").encode()
                signature = _binary(entry, "signature", SIGNATURE_BYTES)
                proof = _hashes(entry, "proof")
            except _MalformedError as error:
                report.fail(SEAL_MALFORMED, subject, str(error))
                continue
            try:
                body = body_parse(body_bytes)
            except MalformedSealError as error:
                report.fail(SEAL_MALFORMED, subject, str(error), seal=error.sequence)
                continue
            sequence = body["sequence"]
            subject = f"seal {sequence}"
            problem = Seal(body_bytes, signature).signature_check(self.keys.seal_keys)
            if problem is not None:
                kind = SEAL_UNKNOWN_KEY if problem.startswith("signed with unknown key") else SEAL_BAD_SIGNATURE
                report.fail(kind, subject, problem, seal=sequence)
                continue
            report.ok(subject, f"signed by {body['key_id']}")
            if latest is None:
                report.fail(SEAL_NOT_IN_LOG, subject, "no good checkpoint to find it in", seal=sequence)
                continue
            try:
                inclusion_verify(
                    index=sequence - 1, size=latest.size, leaf=leaf_hash(body_bytes), proof=proof, root=latest.root
                )
            except ProofError as error:
                report.fail(SEAL_NOT_IN_LOG, subject, f"not in checkpoint {latest.size}: {error}", seal=sequence)
                continue
            report.ok(subject, f"leaf {sequence - 1} of checkpoint {latest.size}")
            self.seals[sequence] = body
            anchored = self.anchor_of(sequence)
            if anchored is None:
                report.skip(subject, "no time anchor in the bundle covers it")
            else:
                report.ok(subject, f"in the log by {_iso(anchored[1])} (anchor of checkpoint {anchored[0]})")
        report.seals = len(self.seals)

    # --- 5. witnesses -----------------------------------------------------------------------------

    def witnesses_check(self) -> None:
        needed = max(self.seals, default=0)
        for verifier in self.keys.witness_verifiers:
            subject = f"witness {_key_name(verifier)}"
            sizes = [size for size in self.cosigned.get((verifier.name, verifier.key_hash), ()) if size >= needed]
            if sizes:
                self.report.ok(subject, f"cosigned checkpoint {min(sizes)}, which holds every seal of the bundle")
            else:
                self.report.fail(
                    COSIGNATURE_MISSING,
                    subject,
                    f"no cosignature on a checkpoint holding seal {needed}, the newest here",
                )

    # --- 6. records -------------------------------------------------------------------------------

    def _record(self, entry: Any) -> tuple[str, str, int, str]:
        """The line, table, id and recorded_at of a record of this bundle's correlation id."""
        line = _text(entry, "line")
        table, row_id, recorded_at, correlation_id = _line_row(line)
        if correlation_id != self.bundle.correlation_id:
            raise _MalformedError(f"{table} {row_id} is of another correlation id")
        low, high = self.bundle.time_from, self.bundle.time_to
        if (low is not None and recorded_at < timestamp_canonical(timestamp_parse(low))) or (
            high is not None and recorded_at >= timestamp_canonical(timestamp_parse(high))
        ):
            raise _MalformedError(f"{table} {row_id} was recorded outside the bundle's time range")
        return line, table, row_id, recorded_at

    def records_check(self, max_anchor_delay: float | None) -> None:
        report = self.report
        windows = WindowIndex(
            (body["window"]["start"], body["window"]["end"], sequence) for sequence, body in self.seals.items()
        )
        for position, entry in enumerate(self.items("records")):
            try:
                index, proof = _size(entry, "index"), _hashes(entry, "proof")
                line, table, row_id, recorded_at = self._record(entry)
            except _MalformedError as error:
                report.fail(RECORD_UNPROVEN, f"record #{position + 1}", str(error))
                continue
            subject = f"record {table} {row_id}"
            sequence = windows.key_of(recorded_at)
            if sequence is None:
                report.fail(
                    RECORD_UNPROVEN,
                    subject,
                    f"no good seal in the bundle covers its recorded_at {recorded_at}",
                    table=table,
                    row_id=row_id,
                )
                continue
            part = self.seals[sequence]["tables"].get(table)
            if part is None:
                report.fail(RECORD_UNPROVEN, subject, f"seal {sequence} seals no {table}", table=table, row_id=row_id)
                continue
            try:
                inclusion_verify(
                    index=index,
                    size=part["count"],
                    leaf=leaf_hash(row_hash(line)),
                    proof=proof,
                    root=bytes.fromhex(part["root"]),
                )
            except ProofError as error:
                report.fail(
                    RECORD_UNPROVEN,
                    subject,
                    f"not in {table}'s tree of seal {sequence}: {error}",
                    table=table,
                    row_id=row_id,
                    seal=sequence,
                )
                continue
            report.rows += 1
            report.ok(subject, f"leaf {index} of the {part['count']} rows of {table} in seal {sequence}")
            if max_anchor_delay is not None:
                self._delay_check(subject, table, row_id, recorded_at, sequence, max_anchor_delay)

    def _delay_check(
        self, subject: str, table: str, row_id: int, recorded_at: str, sequence: int, max_delay: float
    ) -> None:
        anchored = self.anchor_of(sequence)
        if anchored is None:
            self.report.fail(
                ANCHOR_LATE,
                subject,
                f"no time anchor covers seal {sequence}",
                table=table,
                row_id=row_id,
                seal=sequence,
            )
            return
        size, moment = anchored
        delay = (moment - timestamp_parse(recorded_at)).total_seconds()
        if delay > max_delay:
            self.report.fail(
                ANCHOR_LATE,
                subject,
                f"first time-stamped {delay:.0f} s after it was recorded (checkpoint {size} at {_iso(moment)}),"
                f" more than {max_delay:g} s",
                table=table,
                row_id=row_id,
                seal=sequence,
            )
        else:
            self.report.ok(subject, f"time-stamped {delay:.0f} s after it was recorded (checkpoint {size})")

    # --- 7. records not sealed yet -----------------------------------------------------------------

    def unsealed_check(self) -> None:
        report, latest = self.report, self.latest
        last = self.seals.get(latest.size) if latest is not None else None
        for position, entry in enumerate(self.items("unsealed")):
            try:
                _, table, row_id, recorded_at = self._record(entry)
            except _MalformedError as error:
                report.fail(RECORD_UNPROVEN, f"unsealed record #{position + 1}", str(error))
                continue
            subject = f"record {table} {row_id}"
            if latest is not None and latest.size > 0 and last is None:
                report.fail(
                    RECORD_UNPROVEN,
                    subject,
                    f"listed as unsealed, but the bundle lacks seal {latest.size}, the log's last, to show it is",
                    table=table,
                    row_id=row_id,
                )
            elif last is not None and recorded_at < last["window"]["end"]:
                report.fail(
                    RECORD_UNPROVEN,
                    subject,
                    f"listed as unsealed, but recorded {recorded_at}, within sealed history (to"
                    f" {last['window']['end']}): its proof is missing",
                    table=table,
                    row_id=row_id,
                )
            else:
                report.unsealed += 1
                end = last["window"]["end"] if last is not None else "the first seal"
                report.skip(subject, f"not sealed yet: recorded {recorded_at}, after {end}; nothing proves it")


def evidence_check(
    data: bytes,
    *,
    keys: AuditorKeys,
    max_anchor_delay: float | None = None,
    held: Sequence[bytes] = (),
) -> EvidenceReport:
    """Every check of a bundle's bytes; `held` are checkpoint notes the auditor kept earlier."""
    started = time.perf_counter()
    report = EvidenceReport()
    bundle = _bundle_read(data, report)
    if bundle is not None:
        check = _Check(bundle, keys, report)
        check.checkpoints_check()
        check.held_check(held)
        check.anchors_check()
        check.seals_check()
        check.witnesses_check()
        check.records_check(max_anchor_delay)
        check.unsealed_check()
    report.seconds = time.perf_counter() - started
    return report
