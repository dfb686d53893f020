"""Two guards of the write path that the API pods' database role can no longer turn off.

1. Idempotency-Keys carry `answer_hmac` (audit/write/idempotency.py): a key row is believed only
   when it verifies under the service's SECRET_KEY, which the database role does not have.
   Keys claimed before this migration, or by a pod of the previous version during the rollout,
   have none (the column's default, ''): a retry of such a request within their 24 h is written
   again (and counted as an anomaly) instead of replayed.

2. The write-lag bound moves from a session setting (`kubernaut.audit_max_write_lag`, which
   any session may SET, the runtime role's included) into `audit_write_limits`, a one-row table
   only its owner can write. The sealed-window trigger reads it inside each INSERT, beside the
   end of the last seal: a row whose recorded_at lies further behind its statement's start is
   refused, unless the inserting role owns the table, as with the clock bound of migration 0005
   (the owner migrates and maintains, stores past rows on purpose, and could drop the trigger
   anyway). `manage.py migrate` (run as the owner) sets it to AUDIT_WRITE_MAX_LAG_SECONDS after
   every migration (audit/write/lag_bound.py); NULL leaves it unchecked. The session setting
   remains a bound a session may add for itself, never one it can lift.

Every statement waits at most 2 s for its lock: the keys table's ALTER queues the write path's
claims behind it for no longer than that (the migration Job fails and is run again instead).
"""

from importlib import import_module

from django.db import migrations, models

SET_LOCK_TIMEOUT = "SET LOCAL lock_timeout = '2s'"

LIMITS_SQL = """
CREATE TABLE audit_write_limits (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    max_write_lag interval CHECK (max_write_lag > interval '0')
);
COMMENT ON TABLE audit_write_limits IS
    'Bounds the database enforces on every audit INSERT; written by the owner only (manage.py migrate).';
INSERT INTO audit_write_limits (max_write_lag) VALUES (interval '10 seconds');
"""

FUNCTION_SQL = """
CREATE OR REPLACE FUNCTION audit_refuse_sealed_window() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    sealed_until timestamptz;
    max_lag interval;
    session_lag text := current_setting('kubernaut.audit_max_write_lag', true);
BEGIN
    SELECT (SELECT window_end FROM audit_seals ORDER BY sequence DESC LIMIT 1),
           (SELECT max_write_lag FROM audit_write_limits)
      INTO sealed_until, max_lag;
    IF NEW.recorded_at < sealed_until THEN
        RAISE EXCEPTION 'recorded_at % is in a sealed window (sealed until %): % refuses it',
            NEW.recorded_at, sealed_until, TG_TABLE_NAME USING ERRCODE = 'check_violation';
    END IF;
    -- A bound a session sets for itself (the owner's tests and tools do) adds to the table's.
    IF session_lag <> '' AND NEW.recorded_at < statement_timestamp() - session_lag::interval THEN
        RAISE EXCEPTION 'recorded_at % is more than % behind the statement: % refuses it',
            NEW.recorded_at, session_lag, TG_TABLE_NAME USING ERRCODE = 'check_violation';
    END IF;
    IF NEW.recorded_at < statement_timestamp() - max_lag THEN
        -- Looked up only for a row out of the bound: the usual insert pays one comparison.
        IF NOT pg_has_role(current_user, (SELECT relowner FROM pg_class WHERE oid = TG_RELID), 'MEMBER') THEN
            RAISE EXCEPTION 'recorded_at % is more than % behind the statement: % refuses it',
                NEW.recorded_at, max_lag, TG_TABLE_NAME USING ERRCODE = 'check_violation';
        END IF;
    END IF;
    RETURN NEW;
END
$$;
"""

# Migration 0004's function, for the way back (the triggers that call it stay in place).
PREVIOUS_FUNCTION_SQL = import_module("audit.migrations.0004_seals").FUNCTION_SQL.replace(
    "CREATE FUNCTION", "CREATE OR REPLACE FUNCTION", 1
)


class Migration(migrations.Migration):
    dependencies = [
        ("audit", "0006_idempotency_key_scope"),
    ]

    operations = [
        migrations.RunSQL(SET_LOCK_TIMEOUT, reverse_sql=SET_LOCK_TIMEOUT),
        migrations.AddField(
            model_name="idempotencykey",
            name="answer_hmac",
            field=models.CharField(
                db_default="",
                help_text="HMAC-SHA256 under the service's secret key of scope, actor, key, request hash and answer.",
                max_length=64,
            ),
        ),
        migrations.RunSQL(
            LIMITS_SQL + FUNCTION_SQL,
            reverse_sql=PREVIOUS_FUNCTION_SQL + "DROP TABLE audit_write_limits;",
        ),
    ]
