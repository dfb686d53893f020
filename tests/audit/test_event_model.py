"""The audit events table: monthly partitions, append-only, guarded at insert like the typed
tables, an insertion sequence, and columns as wide as upstream's document allows."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import DatabaseError, IntegrityError, connection, transaction

from audit.models import AuditEvent
from kubernaut_storage.database.partitioning import add_months, month_start, partition_create, partition_for
from testutils.events import event_row_create
from testutils.integrity import seal_row_ahead

pytestmark = pytest.mark.django_db


def _partition_of(event: AuditEvent) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT tableoid::regclass::text FROM audit_events WHERE id = %s", [event.id])
        return cursor.fetchone()[0]


def test_a_row_lands_in_the_partition_of_its_month():
    now = dt.datetime.now(dt.UTC)
    assert _partition_of(event_row_create(recorded_at=now)) == f"audit_events_p{now:%Y_%m}"
    later = add_months(month_start(now), 4) + dt.timedelta(days=3)
    partition_create(partition_for("audit_events", later))
    assert _partition_of(event_row_create(recorded_at=later)) == f"audit_events_p{later:%Y_%m}"


def test_a_month_without_a_partition_refuses_the_row():
    far = add_months(month_start(dt.datetime.now(dt.UTC)), 30)
    with pytest.raises(IntegrityError, match="no partition"), transaction.atomic():
        event_row_create(recorded_at=far)


@pytest.mark.parametrize(
    "statement",
    ["UPDATE audit_events SET event_outcome = 'failure' WHERE id = %s", "DELETE FROM audit_events WHERE id = %s"],
)
def test_rows_cannot_be_updated_or_deleted(statement):
    event = event_row_create()
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(statement, [event.id])
    assert AuditEvent.objects.get(id=event.id).event_outcome == "success"


def test_the_insertion_sequence_follows_the_order_rows_were_written_in():
    now = dt.datetime.now(dt.UTC)
    first = event_row_create(recorded_at=now)
    # One multi-row INSERT, as the write path stores a batch: rows numbered in input order.
    batch = AuditEvent.objects.bulk_create(
        [
            AuditEvent(
                recorded_at=now,
                version="1.0",
                event_type="gateway.crd.created",
                event_timestamp=now,
                event_category="gateway",
                event_action=f"step-{index}",
                event_outcome="success",
                correlation_id="rr-sequence",
                event_data={"event_type": "gateway.crd.created", "index": index},
                actor="test",
                request_id="req-1",
                content_sha256="0" * 64,
            )
            for index in range(50)
        ]
    )
    last = event_row_create(recorded_at=now)
    stored = list(AuditEvent.objects.filter(correlation_id="rr-sequence").order_by("id"))
    assert [row.event_action for row in stored] == [f"step-{index}" for index in range(50)]
    assert [row.id for row in stored] == [row.id for row in batch]
    assert first.id < stored[0].id
    assert stored[-1].id < last.id
    # All in the same second: the sequence, not the time, orders them.
    assert len({row.recorded_at for row in stored}) == 1


def test_a_row_in_a_sealed_window_is_refused():
    now = dt.datetime.now(dt.UTC)
    seal_row_ahead(now=now)
    with pytest.raises(IntegrityError, match="sealed window"), transaction.atomic():
        event_row_create(recorded_at=now)
    event_row_create(recorded_at=now + dt.timedelta(minutes=2))


def test_a_recorded_at_away_from_the_database_clock_is_refused_to_roles_that_do_not_own_the_table():
    with connection.cursor() as cursor:
        cursor.execute("CREATE ROLE test_events_writer")
        # What the runtime role holds (k8s/sql/roles.sql): the seal check reads audit_seals and
        # the write-lag bound.
        cursor.execute("GRANT INSERT, SELECT ON audit_events TO test_events_writer")
        cursor.execute("GRANT SELECT ON audit_seals, audit_write_limits TO test_events_writer")
        cursor.execute("SET LOCAL ROLE test_events_writer")
        try:
            with pytest.raises(DatabaseError, match="is not within 120 s of the database clock"), transaction.atomic():
                event_row_create(recorded_at=dt.datetime.now(dt.UTC) - dt.timedelta(hours=1))
            assert event_row_create().id > 0
        finally:
            cursor.execute("RESET ROLE")


def test_the_table_has_the_typed_tables_guards():
    def trigger_functions(table: str) -> set[tuple[str, str]]:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_get_triggerdef(t.oid) ~ 'BEFORE INSERT', p.proname FROM pg_trigger t"
                " JOIN pg_proc p ON p.oid = t.tgfoid WHERE t.tgrelid = %s::regclass AND NOT t.tgisinternal",
                [table],
            )
            return {(("insert" if before_insert else "update/delete"), name) for before_insert, name in cursor}

    assert trigger_functions("audit_events") == trigger_functions("audit_remediation")
    assert len(trigger_functions("audit_events")) == 3


def test_columns_are_as_wide_as_the_document_allows():
    # Upstream's own columns are narrower (version 10, severity 20, error_code 50, ...).
    event = event_row_create(
        version="v" * 20,
        actor_type="a" * 10_000,
        severity="s" * 10_000,
        error_code="e" * 10_000,
        retention_days=-(2**63),
        duration_ms=2**63 - 1,
        correlation_id="c" * 255,
        event_category="agentsession",
    )
    stored = AuditEvent.objects.get(id=event.id)
    assert (stored.version, stored.severity, stored.retention_days) == ("v" * 20, "s" * 10_000, -(2**63))


def test_absent_and_empty_optional_strings_stay_apart():
    absent = event_row_create()
    empty = event_row_create(actor_type="", namespace="")
    assert AuditEvent.objects.filter(id=absent.id, actor_type__isnull=True, namespace__isnull=True).exists()
    assert AuditEvent.objects.filter(id=empty.id, actor_type="", namespace="").exists()


def test_the_event_id_is_made_by_the_service_as_a_version_7_uuid():
    assert event_row_create().event_id.version == 7
