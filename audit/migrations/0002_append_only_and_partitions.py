"""Make the audit tables append-only and create this month's and the next two months' partitions."""

import datetime as dt

from django.db import migrations
from django.db.backends.base.schema import BaseDatabaseSchemaEditor
from django.db.migrations.state import StateApps
from django.utils import timezone

AUDIT_TABLES = ["audit_remediation", "audit_aianalysis", "audit_workflow", "audit_execution"]

# Row triggers on a partitioned parent are cloned onto every partition, present and future.
# Retention removes whole partitions (DETACH + DROP), which no row trigger sees; TRUNCATE is
# kept from the runtime role by privileges (docs/DATABASE_ROLES.md), not by a trigger.
FUNCTION_SQL = """
CREATE OR REPLACE FUNCTION audit_reject_mutation() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit records are append-only: % on % is not allowed', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END
$$;
"""
TRIGGER_SQL = (
    "CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table}"
    " FOR EACH ROW EXECUTE FUNCTION audit_reject_mutation();"
)


# Frozen here rather than imported, so this migration means the same thing forever: the
# tables that existed when it was written and the partition naming of that time.
PARTITIONED_TABLES = [*AUDIT_TABLES, "incident_embeddings"]
MONTHS_AHEAD = 2


def create_partitions(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    now = timezone.now().astimezone(dt.UTC)
    for offset in range(MONTHS_AHEAD + 1):
        index = now.year * 12 + now.month - 1 + offset
        starts = dt.datetime(index // 12, index % 12 + 1, 1, tzinfo=dt.UTC)
        ends = dt.datetime((index + 1) // 12, (index + 1) % 12 + 1, 1, tzinfo=dt.UTC)
        for table in PARTITIONED_TABLES:
            schema_editor.execute(
                f"CREATE TABLE IF NOT EXISTS {table}_p{starts:%Y_%m} PARTITION OF {table}"
                f" FOR VALUES FROM ('{starts.isoformat()}') TO ('{ends.isoformat()}')"
            )


class Migration(migrations.Migration):
    dependencies = [
        ("audit", "0001_initial"),
        ("embeddings", "0001_initial"),
    ]

    operations = [
        migrations.RunSQL(
            FUNCTION_SQL + "".join(TRIGGER_SQL.format(table=table) for table in AUDIT_TABLES),
            reverse_sql="".join(f"DROP TRIGGER {table}_append_only ON {table};" for table in AUDIT_TABLES)
            + "DROP FUNCTION audit_reject_mutation();",
        ),
        migrations.RunPython(create_partitions, migrations.RunPython.noop),
    ]
