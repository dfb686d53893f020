"""`manage.py embeddings_backfill`: pending rows get embedded, resumably; fallback rows re-embedded.

The pending rows are made as in production: writes while the OpenAI-compatible server is down
and the chain has no fallback.
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from audit.models import AuditKind
from embeddings.models import EmbeddingBacklog, IncidentEmbedding
from testutils.audit_rows import post_audit
from testutils.embedding_settings import LOCAL_MODEL, OPENAI_MODEL, text_for
from testutils.factories import VALID_BODIES
from testutils.openai_server import OpenAICompatibleServer, deterministic_vector

pytestmark = pytest.mark.django_db


def backfill(*args: str) -> str:
    out = io.StringIO()
    call_command("embeddings_backfill", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def write_while_primary_is_down(
    api: Any, settings: Any, server: OpenAICompatibleServer, bodies: list[tuple[AuditKind, dict[str, Any]]]
) -> list[tuple[AuditKind, int, str]]:
    """POST each body while the primary drops every connection and nothing falls back."""
    settings.EMBEDDING_FALLBACK = "none"
    server.set_mode("drop")
    written = []
    for kind, body in bodies:
        created = post_audit(api, kind, body).json()
        assert created["embeddingStatus"] == "pending"
        written.append((kind, created["id"], text_for(kind, body)))
    server.reset()
    return written


def four_kinds() -> list[tuple[AuditKind, dict[str, Any]]]:
    return [(kind, VALID_BODIES[kind]()) for kind in AuditKind]


def assert_embedded_by_primary(written: list[tuple[AuditKind, int, str]]) -> None:
    for kind, audit_id, text in written:
        row = IncidentEmbedding.objects.get(audit_type=kind, audit_id=audit_id, model=OPENAI_MODEL)
        stored = np.asarray(row.embedding, dtype=np.float32)
        np.testing.assert_array_equal(stored, deterministic_vector(OPENAI_MODEL, text))


def test_backfill_embeds_every_pending_row_with_the_primary(
    api: Any, settings: Any, openai_primary: OpenAICompatibleServer
) -> None:
    written = write_while_primary_is_down(api, settings, openai_primary, four_kinds())
    assert EmbeddingBacklog.objects.count() == 4

    output = backfill("--batch-size", "3")

    assert EmbeddingBacklog.objects.count() == 0
    assert_embedded_by_primary(written)
    assert openai_primary.request_count == 2  # batches of 3 and 1: one provider call each
    assert "4 pending rows to do" in output
    assert f"embedded 4 row(s): 4 by {OPENAI_MODEL}" in output


def test_backfill_sends_each_distinct_text_once_per_batch(
    api: Any, settings: Any, openai_primary: OpenAICompatibleServer
) -> None:
    kind = AuditKind.REMEDIATION
    same = [(kind, VALID_BODIES[kind](name=f"rr-{i}", namespace=f"ns-{i}")) for i in range(3)]
    written = write_while_primary_is_down(api, settings, openai_primary, same)

    backfill()

    assert openai_primary.bodies[0] is not None
    assert openai_primary.bodies[0]["input"] == [written[0][2]]
    assert_embedded_by_primary(written)


def test_backfill_resumes_after_a_limit_and_after_a_failing_provider(
    api: Any, settings: Any, openai_primary: OpenAICompatibleServer
) -> None:
    written = write_while_primary_is_down(api, settings, openai_primary, four_kinds())

    backfill("--limit", "1")
    assert EmbeddingBacklog.objects.count() == 3

    # The first batch succeeds, the second is refused: the first stays committed.
    openai_primary.set_mode("error400")
    with pytest.raises(CommandError, match="run again to resume"):
        backfill("--batch-size", "2")
    assert EmbeddingBacklog.objects.count() == 3

    openai_primary.set_mode("ok")
    backfill("--batch-size", "2")
    assert EmbeddingBacklog.objects.count() == 0
    assert_embedded_by_primary(written)


def test_dry_run_counts_and_changes_nothing(api: Any, settings: Any, openai_primary: OpenAICompatibleServer) -> None:
    write_while_primary_is_down(api, settings, openai_primary, four_kinds())

    output = backfill("--dry-run")

    assert "4 pending rows to do" in output
    assert EmbeddingBacklog.objects.count() == 4
    assert openai_primary.request_count == 0


def test_backfill_with_the_primary_still_down_uses_the_fallback_then_reembed_upgrades(
    api: Any, settings: Any, openai_primary: OpenAICompatibleServer
) -> None:
    written = write_while_primary_is_down(api, settings, openai_primary, four_kinds())

    # Primary still down, fallback back on: the backlog drains with the local model.
    settings.EMBEDDING_FALLBACK = "local"
    openai_primary.set_mode("error500")
    assert f"4 by {LOCAL_MODEL}" in backfill()
    assert EmbeddingBacklog.objects.count() == 0
    local_ids = set(IncidentEmbedding.objects.filter(model=LOCAL_MODEL).values_list("id", flat=True))
    assert len(local_ids) == 4

    # Primary back: add its vectors, keep the local ones (their ids were answered as embeddingId).
    openai_primary.reset()
    assert "4 rows embedded by all-MiniLM-L6-v2 without a text-embedding-3-small vector" in backfill(
        "--dry-run", "--reembed-model", LOCAL_MODEL
    )
    output = backfill("--reembed-model", LOCAL_MODEL, "--batch-size", "3")

    assert f"embedded 4 row(s): 4 by {OPENAI_MODEL}" in output
    assert_embedded_by_primary(written)
    assert set(IncidentEmbedding.objects.filter(model=LOCAL_MODEL).values_list("id", flat=True)) == local_ids
    # Done is done: a second run finds nothing and calls nobody.
    calls = openai_primary.request_count
    assert "0 rows embedded by" in backfill("--reembed-model", LOCAL_MODEL)
    assert openai_primary.request_count == calls


def test_reembed_never_falls_back(api: Any, settings: Any, openai_primary: OpenAICompatibleServer) -> None:
    openai_primary.set_mode("error401")
    post_audit(api, AuditKind.REMEDIATION, VALID_BODIES[AuditKind.REMEDIATION]())  # made by the fallback
    assert IncidentEmbedding.objects.filter(model=LOCAL_MODEL).count() == 1

    with pytest.raises(CommandError, match="HTTP 401"):
        backfill("--reembed-model", LOCAL_MODEL)
    assert IncidentEmbedding.objects.count() == 1


def test_reembed_with_the_primarys_own_model_is_refused(openai_primary: OpenAICompatibleServer) -> None:
    with pytest.raises(CommandError, match="primary's model"):
        backfill("--reembed-model", OPENAI_MODEL)


def test_a_backlog_row_whose_audit_row_is_gone_is_reported_and_kept(
    api: Any, settings: Any, openai_primary: OpenAICompatibleServer
) -> None:
    written = write_while_primary_is_down(api, settings, openai_primary, four_kinds()[:1])
    EmbeddingBacklog.objects.create(
        audit_type=AuditKind.WORKFLOW, audit_id=987654321, audit_recorded_at=timezone.now(), created_at=timezone.now()
    )
    err = io.StringIO()

    call_command("embeddings_backfill", stdout=io.StringIO(), stderr=err)

    assert_embedded_by_primary(written)
    assert "workflow #987654321" in err.getvalue()
    assert list(EmbeddingBacklog.objects.values_list("audit_id", flat=True)) == [987654321]


@pytest.mark.parametrize("args", [("--batch-size", "0"), ("--limit", "0")])
def test_bad_arguments_are_refused(args: tuple[str, str]) -> None:
    with pytest.raises(CommandError):
        backfill(*args)
