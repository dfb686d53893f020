"""Seals of the audit history (docs/INTEGRITY.md): the seals table, append-only, and the trigger
that keeps rows out of windows already sealed.

The trigger runs inside each INSERT (no extra round trip, no lock): one backward scan of the
seals' primary key for the end of the last sealed window. It also refuses a row whose
recorded_at lies further behind the statement's start than `kubernaut.audit_max_write_lag`,
when a session sets it (the service does: AUDIT_WRITE_MAX_LAG_SECONDS), which bounds how late
a write can commit and so how long `audit_seal` must let a window settle.
"""

from django.db import migrations, models

SEALED_TABLES = ["audit_remediation", "audit_aianalysis", "audit_workflow", "audit_execution", "incident_embeddings"]

FUNCTION_SQL = """
CREATE FUNCTION audit_refuse_sealed_window() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    sealed_until timestamptz;
    max_lag text := current_setting('kubernaut.audit_max_write_lag', true);
BEGIN
    SELECT window_end INTO sealed_until FROM audit_seals ORDER BY sequence DESC LIMIT 1;
    IF NEW.recorded_at < sealed_until THEN
        RAISE EXCEPTION 'recorded_at % is in a sealed window (sealed until %): % refuses it',
            NEW.recorded_at, sealed_until, TG_TABLE_NAME USING ERRCODE = 'check_violation';
    END IF;
    IF max_lag <> '' AND NEW.recorded_at < statement_timestamp() - max_lag::interval THEN
        RAISE EXCEPTION 'recorded_at % is more than % behind the statement: % refuses it',
            NEW.recorded_at, max_lag, TG_TABLE_NAME USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END
$$;
"""
TRIGGER_SQL = (
    "CREATE TRIGGER {table}_sealed_window BEFORE INSERT ON {table}"
    " FOR EACH ROW EXECUTE FUNCTION audit_refuse_sealed_window();"
)
SEALS_APPEND_ONLY_SQL = (
    "CREATE TRIGGER audit_seals_append_only BEFORE UPDATE OR DELETE ON audit_seals"
    " FOR EACH ROW EXECUTE FUNCTION audit_reject_mutation();"
)


class Migration(migrations.Migration):
    dependencies = [
        ("audit", "0003_admin_indexes"),
        ("embeddings", "0002_admin_indexes"),
    ]

    operations = [
        migrations.CreateModel(
            name="AuditSeal",
            fields=[
                ("sequence", models.BigIntegerField(primary_key=True, serialize=False)),
                ("window_start", models.DateTimeField()),
                ("window_end", models.DateTimeField()),
                ("row_count", models.BigIntegerField(help_text="Rows of every sealed table in the window.")),
                ("root", models.CharField(help_text="Merkle root of the window (hex).", max_length=64)),
                (
                    "key_id",
                    models.CharField(
                        help_text="The signing key: SHA-256 of the Ed25519 public key.", max_length=80
                    ),
                ),
                ("sealed_at", models.DateTimeField()),
                ("body", models.TextField(help_text="The signed seal, canonical JSON.")),
                ("signature", models.BinaryField(help_text="Ed25519 signature over the body.")),
            ],
            options={
                "db_table": "audit_seals",
                "ordering": ["-sequence"],
                "indexes": [models.Index(fields=["window_start"], name="audit_seals_window_start_idx")],
            },
        ),
        migrations.CreateModel(
            name="AuditVerification",
            fields=[
                ("id", models.BigAutoField(primary_key=True, serialize=False)),
                ("finished_at", models.DateTimeField(db_index=True)),
                ("passed", models.BooleanField(help_text="Nothing found.")),
                ("findings", models.IntegerField()),
                ("rows", models.BigIntegerField()),
                ("seals", models.IntegerField()),
            ],
            options={"db_table": "audit_verifications"},
        ),
        migrations.RunSQL(
            FUNCTION_SQL + "".join(TRIGGER_SQL.format(table=table) for table in SEALED_TABLES) + SEALS_APPEND_ONLY_SQL,
            reverse_sql="DROP TRIGGER audit_seals_append_only ON audit_seals;"
            + "".join(f"DROP TRIGGER {table}_sealed_window ON {table};" for table in SEALED_TABLES)
            + "DROP FUNCTION audit_refuse_sealed_window();",
        ),
    ]
