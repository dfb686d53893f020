"""Make the audit tables append-only and create this month's and the next two months' partitions."""

from django.db import migrations
from django.db.backends.base.schema import BaseDatabaseSchemaEditor
from django.db.migrations.state import StateApps
from django.utils import timezone

from kubernaut_storage.partitioning import partitions_ensure

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


def create_partitions(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    partitions_ensure(now=timezone.now(), months_ahead=2)


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
