"""The Idempotency-Key scopes of the audit-event endpoints: the keys callers send, and the keys
the service makes from a body sent without one. Choices only: no change to the table."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("audit", "0009_seal_log"),
    ]

    operations = [
        migrations.AlterField(
            model_name="idempotencykey",
            name="scope",
            field=models.CharField(
                choices=[
                    ("remediation", "Remediation request"),
                    ("aianalysis", "AI analysis"),
                    ("workflow", "Workflow execution"),
                    ("execution", "Kubernetes execution"),
                    ("batch", "Batch"),
                    ("events", "Audit event"),
                    ("events-batch", "Audit event batch"),
                    ("events-body", "Audit event body"),
                ],
                db_column="kind",
                help_text="The endpoint the key was sent to (a record kind, batch, events, events-batch) or events-body.",
                max_length=16,
            ),
        ),
    ]
