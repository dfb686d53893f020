"""`audit_verify --incremental`: each run checks every window sealed since the last run once, and
a rotating random share of the older ones, so that all history is checked again every `period`
without a full scan per run.

Where it stands is kept in the `audit_verifications` row each run records (`progress`):

- `sealed_through`: the last seal whose window was checked as a new one. The next run starts
  after it; a run with findings does not move it, so the same findings come back on every run
  until someone looks (a finding that a later run no longer reports would clear the alert).
- the sample: old seals are grouped in blocks of BLOCK_SEALS consecutive seals (one query per
  table and block), each block placed at a pseudo-random point of [0, 1) by a salted hash. Each
  run checks the blocks between `cursor` and `cursor + elapsed / period` and moves the cursor
  there; when it passes 1, it wraps round and a new salt is drawn, so each sweep visits the
  blocks in a new order that cannot be read from the code. Every old block is checked once per
  sweep, however often the job runs; if it does not run for a whole period, the next run checks
  everything.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from audit.integrity.stored_seals import last_seal
from audit.integrity.verification import VerifyReport, audit_verify
from audit.models import AuditSeal, AuditVerification
from kubernaut_integrity.findings import UNSEALED_LAG

#: Consecutive seals checked together in the sample: an hour of 60-s windows.
BLOCK_SEALS = 60


@dataclass(frozen=True, slots=True)
class Progress:
    sealed_through: int
    cursor: float
    salt: str

    def as_json(self) -> dict[str, Any]:
        return {"sealed_through": self.sealed_through, "cursor": self.cursor, "salt": self.salt}


def progress_last() -> tuple[Progress | None, dt.datetime | None]:
    """The progress the last incremental run recorded, and when it finished."""
    last = AuditVerification.objects.filter(incremental=True).order_by("-finished_at", "-id").first()
    if last is None or not isinstance(last.progress, dict):
        return None, None
    try:
        progress = Progress(
            sealed_through=int(last.progress["sealed_through"]),
            cursor=float(last.progress["cursor"]) % 1.0,
            salt=str(last.progress["salt"]),
        )
    except (KeyError, TypeError, ValueError):
        return None, None
    return progress, last.finished_at


def block_position(block: int, salt: str) -> float:
    """Where `block` lies in [0, 1) for the sweep salted with `salt`."""
    digest = hashlib.sha256(f"{salt}:{block}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def blocks_due(*, blocks: int, cursor: float, share: float, salt: str) -> list[int]:
    """The blocks of [0, blocks) whose position is in [cursor, cursor + share), wrapping at 1."""
    if share >= 1.0:
        return list(range(blocks))
    end = cursor + share
    return [
        block
        for block in range(blocks)
        if cursor <= (position := block_position(block, salt)) < end or position < end - 1.0
    ]


def audit_verify_incremental(
    *,
    period: dt.timedelta,
    now: dt.datetime,
    verify: Callable[..., VerifyReport] = audit_verify,
    **verify_arguments: Any,
) -> tuple[VerifyReport, Progress]:
    """Check the windows sealed since the last incremental run and the sample due now; returns
    the merged report and the progress to record with it (`AuditVerification.progress`).

    `verify_arguments` are `audit_verify`'s (keys, directories, workers...), without a range."""
    previous, previous_at = progress_last()
    head = last_seal()
    head_sequence = head.sequence if head is not None else 0
    through = previous.sealed_through if previous is not None else 0
    report = VerifyReport()
    # New windows: from the first seal after `through` to now (with the unsealed-lag check).
    new_from = _window_start(through + 1) if through < head_sequence else None
    new_windows_clean = True
    if previous is None or new_from is not None:
        new = verify(time_from=new_from, time_to=None, now=now, **verify_arguments)
        # Seals late is about sealing, not about the windows checked: it does not keep them due.
        new_windows_clean = all(finding.kind == UNSEALED_LAG for finding in new.findings)
        _merge(report, new)
    elif head is not None:
        # Nothing sealed since: still report windows left unsealed too long.
        _merge(report, verify(time_from=head.window_end, time_to=None, now=now, **verify_arguments))

    # The sample, among the seals the previous runs had already checked as new.
    cursor, salt = (previous.cursor, previous.salt) if previous is not None else (0.0, secrets.token_hex(16))
    share = (now - previous_at) / period if previous_at is not None else 0.0
    if previous is not None and through:
        for first, last in _block_ranges(blocks_due(blocks=_blocks(through), cursor=cursor, share=share, salt=salt)):
            sampled_from, sampled_to = _window_start(first), _window_end(min(last, through))
            _merge(report, verify(time_from=sampled_from, time_to=sampled_to, now=now, **verify_arguments))
    cursor += min(share, 1.0)
    if cursor >= 1.0:
        cursor, salt = cursor % 1.0, secrets.token_hex(16)  # a new sweep, in a new order
    checked_through = head_sequence if new_windows_clean else through
    return report, Progress(sealed_through=checked_through, cursor=cursor, salt=salt)


def _blocks(through: int) -> int:
    return (through + BLOCK_SEALS - 1) // BLOCK_SEALS


def _block_ranges(blocks: list[int]) -> Iterator[tuple[int, int]]:
    """(first, last) seal sequence of each run of consecutive blocks."""
    run_start = previous = None
    for block in sorted(blocks):
        if previous is not None and block == previous + 1:
            previous = block
            continue
        if run_start is not None and previous is not None:
            yield run_start * BLOCK_SEALS + 1, (previous + 1) * BLOCK_SEALS
        run_start = previous = block
    if run_start is not None and previous is not None:
        yield run_start * BLOCK_SEALS + 1, (previous + 1) * BLOCK_SEALS


def _window_start(sequence: int) -> dt.datetime | None:
    seal = AuditSeal.objects.filter(sequence__gte=sequence).order_by("sequence").only("window_start").first()
    return seal.window_start if seal is not None else None


def _window_end(sequence: int) -> dt.datetime | None:
    seal = AuditSeal.objects.filter(sequence__lte=sequence).order_by("-sequence").only("window_end").first()
    return seal.window_end if seal is not None else None


def _merge(report: VerifyReport, part: VerifyReport) -> None:
    report.seals += part.seals
    report.rows += part.rows
    report.findings += part.findings
    report.seconds += part.seconds
