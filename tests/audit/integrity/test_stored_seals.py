"""The seal chain as stored: its head, a time range of it, the seal before one."""

from __future__ import annotations

from pathlib import Path

import pytest

from audit.integrity.stored_seals import last_seal, seal_before, seals_in_range, signed_seal
from audit.models import AuditSeal
from testutils.admin_rows import remediation_chain
from testutils.integrity import key_files, seal_now

pytestmark = pytest.mark.django_db


def test_the_chain_head_range_and_predecessor(tmp_path: Path) -> None:
    assert last_seal() is None
    remediation_chain()
    private, _ = key_files(tmp_path / "keys")
    seal_now(private, tmp_path / "seals")
    sequences = sorted(AuditSeal.objects.values_list("sequence", flat=True))
    assert len(sequences) >= 3
    head = last_seal()
    assert head is not None
    assert head.sequence == sequences[-1]
    assert signed_seal(head).body["sequence"] == head.sequence

    middle = AuditSeal.objects.get(sequence=sequences[1])
    assert list(seals_in_range(middle.window_start, middle.window_end)) == [middle]
    assert [seal.sequence for seal in seals_in_range(None, None)] == sequences
    assert seal_before(middle.sequence) == signed_seal(AuditSeal.objects.get(sequence=sequences[0]))
    assert seal_before(sequences[0]) is None
