"""The seal chain as the `audit_seals` table stores it: its head, the seals of a time range,
the seal before one. Sealing, verification, the seal metrics and retention read it here."""

from __future__ import annotations

import datetime as dt

from django.db.models import QuerySet

from audit.models import AuditSeal
from kubernaut_integrity.seals import Seal

#: The chain's head: what the next seal links to, where sealing resumes and what the seal lag
#: is measured from. SQL text, because the metrics endpoint runs it on a connection of its own.
LAST_SEAL_SQL = "SELECT * FROM audit_seals ORDER BY sequence DESC LIMIT 1"


def last_seal() -> AuditSeal | None:
    return next(iter(AuditSeal.objects.raw(LAST_SEAL_SQL)), None)


def seals_in_range(time_from: dt.datetime | None, time_to: dt.datetime | None) -> QuerySet[AuditSeal]:
    """The seals whose windows overlap [time_from, time_to) (None: unbounded), in sequence order."""
    seals = AuditSeal.objects.order_by("sequence")
    if time_from is not None:
        seals = seals.filter(window_end__gt=time_from)
    if time_to is not None:
        seals = seals.filter(window_start__lt=time_to)
    return seals


def seal_before(sequence: int) -> Seal | None:
    row = AuditSeal.objects.filter(sequence__lt=sequence).order_by("-sequence").only("body", "signature").first()
    return signed_seal(row) if row is not None else None


def signed_seal(stored: AuditSeal) -> Seal:
    """The stored seal as what was signed: the body's exact bytes and the signature."""
    return Seal(stored.body.encode(), bytes(stored.signature))
