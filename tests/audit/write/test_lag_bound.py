"""`manage.py migrate` writes AUDIT_WRITE_MAX_LAG_SECONDS into the table the insert trigger reads."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.management import call_command
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from testutils.admin_rows import bulk_remediations

pytestmark = pytest.mark.django_db


def _bound() -> dt.timedelta | None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT max_write_lag FROM audit_write_limits")
        (bound,) = cursor.fetchall()
    return bound[0]


def test_migrate_sets_the_databases_write_lag_bound_from_the_setting(settings):
    settings.AUDIT_WRITE_MAX_LAG_SECONDS = 7
    call_command("migrate", verbosity=0)
    assert _bound() == dt.timedelta(seconds=7)

    settings.AUDIT_WRITE_MAX_LAG_SECONDS = 0
    call_command("migrate", verbosity=0)
    assert _bound() is None  # unchecked, as the test settings have it


def test_the_bound_binds_every_role_but_the_owner_and_a_session_may_only_tighten_it():
    """The tests connect as the tables' owner: its past-dated rows are accepted (maintenance,
    fixtures), unless its own session asks for a bound. The runtime role's side is in
    tests/kubernaut_storage/database/test_roles_hostile.py."""
    late = timezone.now() - dt.timedelta(seconds=30)
    with connection.cursor() as cursor:
        cursor.execute("UPDATE audit_write_limits SET max_write_lag = interval '10 seconds'")
    bulk_remediations(count=1, recorded_from=late, recorded_to=late + dt.timedelta(seconds=1))

    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL kubernaut.audit_max_write_lag = '20s'")
    with pytest.raises(DatabaseError, match="more than 20s behind"), transaction.atomic():
        bulk_remediations(count=1, recorded_from=late, recorded_to=late + dt.timedelta(seconds=1))
