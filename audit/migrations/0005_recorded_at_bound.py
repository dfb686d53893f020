"""The database, not the client or the app, bounds `recorded_at` on the four audit tables.

A row whose recorded_at is more than RECORDED_AT_SKEW_SECONDS from the database server's clock
is refused (check_violation), unless the inserting role owns the table: the owner migrates and
maintains, and could drop the trigger anyway. So the runtime role cannot back- or post-date
evidence, whatever the application sends.

The app sets recorded_at just before its insert; the skew covers clock drift between the pods
and the database and the write path's retries of a transient error.
"""

from django.db import migrations

AUDIT_TABLES = ["audit_remediation", "audit_aianalysis", "audit_workflow", "audit_execution"]
RECORDED_AT_SKEW_SECONDS = 120

FUNCTION_SQL = f"""
CREATE OR REPLACE FUNCTION audit_bound_recorded_at() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.recorded_at IS NULL
     OR abs(extract(epoch FROM NEW.recorded_at - clock_timestamp())) > {RECORDED_AT_SKEW_SECONDS} THEN
    -- Looked up only for a row out of bounds: the usual insert pays one comparison.
    IF NOT pg_has_role(current_user, (SELECT relowner FROM pg_class WHERE oid = TG_RELID), 'MEMBER') THEN
      RAISE EXCEPTION 'recorded_at % is not within {RECORDED_AT_SKEW_SECONDS} s of the database clock',
        NEW.recorded_at USING ERRCODE = 'check_violation';
    END IF;
  END IF;
  RETURN NEW;
END $$;
"""

# On the partitioned parent: PostgreSQL clones it onto every partition, present and future.
TRIGGER_SQL = (
    "CREATE TRIGGER {table}_recorded_at_bound BEFORE INSERT ON {table}"
    " FOR EACH ROW EXECUTE FUNCTION audit_bound_recorded_at();"
)


class Migration(migrations.Migration):

    dependencies = [
        ("audit", "0004_seals"),
    ]

    operations = [
        migrations.RunSQL(
            FUNCTION_SQL + "".join(TRIGGER_SQL.format(table=table) for table in AUDIT_TABLES),
            reverse_sql="".join(f"DROP TRIGGER {table}_recorded_at_bound ON {table};" for table in AUDIT_TABLES)
            + "DROP FUNCTION audit_bound_recorded_at();",
        ),
    ]
