"""The audit events table (upstream Kubernaut's unified events): monthly partitions, append-only,
and guarded at insert like the typed tables.

The guards are the typed tables' own trigger functions, attached by name, so a later migration
that redefines one of them (CREATE OR REPLACE) guards this table too: refuse UPDATE and DELETE
(0002), refuse a row in a sealed window or written too late (0004), refuse a recorded_at far
from the database's clock (0005).
"""

import datetime as dt

from django.db import migrations, models
from django.db.backends.base.schema import BaseDatabaseSchemaEditor
from django.db.migrations.state import StateApps
from django.utils import timezone

import audit.event_ids
from kubernaut_storage.migration_operations import CreatePartitionedModel

TABLE = "audit_events"
# Trigger names sort in the order PostgreSQL fires them: the clock bound before the seal check,
# as on the typed tables.
TRIGGERS = {
    f"{TABLE}_append_only": "BEFORE UPDATE OR DELETE ON {table} FOR EACH ROW EXECUTE FUNCTION audit_reject_mutation()",
    f"{TABLE}_recorded_at_bound": "BEFORE INSERT ON {table} FOR EACH ROW EXECUTE FUNCTION audit_bound_recorded_at()",
    f"{TABLE}_sealed_window": "BEFORE INSERT ON {table} FOR EACH ROW EXECUTE FUNCTION audit_refuse_sealed_window()",
}

# Frozen here, as in 0002: this month and the next two, so the table takes rows as soon as it
# exists; `audit_partitions_ensure` keeps creating the months after.
MONTHS_AHEAD = 2


def create_partitions(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    now = timezone.now().astimezone(dt.UTC)
    for offset in range(MONTHS_AHEAD + 1):
        index = now.year * 12 + now.month - 1 + offset
        starts = dt.datetime(index // 12, index % 12 + 1, 1, tzinfo=dt.UTC)
        ends = dt.datetime((index + 1) // 12, (index + 1) % 12 + 1, 1, tzinfo=dt.UTC)
        schema_editor.execute(
            f"CREATE TABLE IF NOT EXISTS {TABLE}_p{starts:%Y_%m} PARTITION OF {TABLE}"
            f" FOR VALUES FROM ('{starts.isoformat()}') TO ('{ends.isoformat()}')"
        )


class Migration(migrations.Migration):

    dependencies = [
        ('audit', '0007_write_guards_the_api_role_cannot_change'),
    ]

    operations = [
        CreatePartitionedModel(
            partition_key='recorded_at',
            name='AuditEvent',
            fields=[
                ('id', models.BigAutoField(help_text='Insertion sequence.', primary_key=True, serialize=False)),
                ('event_id', models.UUIDField(default=audit.event_ids.event_id_new, help_text='The id the API answered with.')),
                ('recorded_at', models.DateTimeField(help_text='Server receive time; the partition key.')),
                ('version', models.CharField(max_length=20)),
                ('event_type', models.CharField(max_length=100)),
                ('event_timestamp', models.DateTimeField(help_text='When the event happened, as the caller says.')),
                ('event_category', models.CharField(choices=[('gateway', 'Gateway'), ('notification', 'Notification'), ('analysis', 'Analysis'), ('aiagent', 'AI agent'), ('signalprocessing', 'Signal processing'), ('workflow', 'Workflow'), ('workflowexecution', 'Workflow execution'), ('orchestration', 'Orchestration'), ('approval', 'Approval'), ('effectiveness', 'Effectiveness'), ('actiontype', 'Action type'), ('apifrontend', 'API frontend'), ('security', 'Security'), ('agentsession', 'Agent session')], max_length=50)),
                ('event_action', models.CharField(max_length=50)),
                ('event_outcome', models.CharField(choices=[('success', 'Success'), ('failure', 'Failure'), ('pending', 'Pending')], max_length=16)),
                ('actor_type', models.TextField(blank=True, null=True)),
                ('actor_id', models.TextField(blank=True, help_text='Who the caller says acted.', null=True)),
                ('actor_ip', models.CharField(blank=True, max_length=45, null=True)),
                ('resource_type', models.TextField(blank=True, null=True)),
                ('resource_id', models.TextField(blank=True, null=True)),
                ('correlation_id', models.CharField(max_length=255)),
                ('parent_event_id', models.UUIDField(blank=True, null=True)),
                ('parent_event_date', models.DateTimeField(blank=True, null=True)),
                ('namespace', models.TextField(blank=True, null=True)),
                ('cluster_id', models.TextField(blank=True, null=True)),
                ('severity', models.TextField(blank=True, null=True)),
                ('duration_ms', models.BigIntegerField(blank=True, null=True)),
                ('error_code', models.TextField(blank=True, null=True)),
                ('error_message', models.TextField(blank=True, null=True)),
                ('retention_days', models.BigIntegerField(blank=True, null=True)),
                ('is_sensitive', models.BooleanField(blank=True, null=True)),
                ('event_data', models.JSONField(help_text='The payload, as received.')),
                ('extra_fields', models.JSONField(blank=True, help_text='Top-level keys the document does not name, as received.', null=True)),
                ('actor', models.CharField(help_text='The authenticated caller that wrote the event.', max_length=255)),
                ('request_id', models.CharField(max_length=128)),
                ('content_sha256', models.CharField(help_text='SHA-256 of the event as received, recorded_at and actor.', max_length=64)),
            ],
            options={
                'verbose_name': 'audit event',
                'db_table': 'audit_events',
                'ordering': ['-recorded_at', '-id'],
                'indexes': [models.Index(fields=['recorded_at'], name='audit_events_recorded_idx'), models.Index(fields=['event_id'], name='audit_events_event_id_idx'), models.Index(fields=['correlation_id', 'recorded_at'], name='audit_events_corr_rec_idx'), models.Index(fields=['event_type', 'recorded_at'], name='audit_events_type_rec_idx'), models.Index(fields=['event_category', 'recorded_at'], name='audit_events_cat_rec_idx'), models.Index(fields=['event_outcome', 'recorded_at'], name='audit_events_outcome_rec_idx')],
            },
        ),
        migrations.RunSQL(
            "".join(f"CREATE TRIGGER {name} {body.format(table=TABLE)};" for name, body in TRIGGERS.items()),
            reverse_sql="".join(f"DROP TRIGGER {name} ON {TABLE};" for name in TRIGGERS),
        ),
        migrations.RunPython(create_partitions, migrations.RunPython.noop),
    ]
