"""`manage.py migrate` writes AUDIT_WRITE_MAX_LAG_SECONDS into the table the insert trigger reads."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.management import call_command
from django.db import connection

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
