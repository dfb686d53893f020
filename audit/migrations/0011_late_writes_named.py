"""The write-path trigger names its "too late" refusals (a row in a sealed window, or further
behind its statement than the write-lag bound) with the constraint `audit_write_too_late`, so
the service answers them 503 + Retry-After (kubernaut_storage/database/errors.py) instead of
500: such a request was slow, not wrong, and sent again it gets a new recorded_at. The SQLSTATE
stays check_violation, so nothing that caught it before sees another error."""

from importlib import import_module

from django.db import migrations

from kubernaut_storage.database.errors import WRITE_TOO_LATE_CONSTRAINT

PREVIOUS_FUNCTION_SQL = import_module("audit.migrations.0007_write_guards_the_api_role_cannot_change").FUNCTION_SQL
FUNCTION_SQL = PREVIOUS_FUNCTION_SQL.replace(
    "USING ERRCODE = 'check_violation'", f"USING ERRCODE = 'check_violation', CONSTRAINT = '{WRITE_TOO_LATE_CONSTRAINT}'"
)


class Migration(migrations.Migration):
    dependencies = [
        ("audit", "0010_events_write_scopes"),
    ]

    operations = [
        migrations.RunSQL(FUNCTION_SQL, reverse_sql=PREVIOUS_FUNCTION_SQL),
    ]
