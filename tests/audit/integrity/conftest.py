"""One sealed history with its seal log, made once per module: a correlation id's records in two
sealing runs (each with a checkpoint, a witness's cosignature and an RFC 3161 anchor) and a
third lot not sealed yet, its evidence bundle, and the first checkpoint as an auditor kept it.
The rows are rolled back; the bundle, keys and files stay for the module's tests."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.db import transaction

from kubernaut_integrity.checkpoint import checkpoint_parse
from kubernaut_integrity.note import note_parse
from testutils.admin_rows import remediation_chain
from testutils.evidence import EvidenceCase, log_contents, next_window, sealed_history
from testutils.tsa import TimestampAuthority


@pytest.fixture(scope="module")
def evidence_case(
    django_db_setup: Any,
    django_db_blocker: Any,
    tmp_path_factory: pytest.TempPathFactory,
    time_stamp_authority: TimestampAuthority,
) -> Iterator[EvidenceCase]:
    history = sealed_history(tmp_path_factory.mktemp("evidence"), witness=True, authority=time_stamp_authority)
    assert history.witness is not None
    try:
        with django_db_blocker.unblock(), transaction.atomic():
            correlation_id = remediation_chain()["correlation_id"]
            next_window()
            history.seal()
            kept = (history.seal_dir / "checkpoint").read_bytes()
            kept_size = checkpoint_parse(note_parse(kept).text).size
            remediation_chain(correlation_id=correlation_id)
            next_window()
            history.seal()
            remediation_chain(correlation_id=correlation_id)
            bundle = history.bundle(correlation_id, consistent_from=[kept_size])
            bodies, leaves = log_contents()
            transaction.set_rollback(True)
        yield EvidenceCase(history, correlation_id, bundle, kept, kept_size, bodies, leaves)
    finally:
        history.witness.__exit__(None, None, None)
