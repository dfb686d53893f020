"""IdempotencyKey.kind is its scope: a record kind, or "batch" (which its choices left out).

Django's state only: the column keeps its name (`db_column="kind"`), choices and help texts
live in Python, and the unique constraint is the same index on the same columns, so the
database is not touched (`sqlmigrate audit 0006` prints no statement).
"""

from django.db import migrations, models

FIELDS = ["actor", "scope", "key"]


class Migration(migrations.Migration):
    dependencies = [
        ("audit", "0005_recorded_at_bound"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.RemoveConstraint(model_name="idempotencykey", name="audit_idempotency_key_scope_uniq"),
                migrations.RenameField(model_name="idempotencykey", old_name="kind", new_name="scope"),
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
                        ],
                        db_column="kind",
                        help_text="The endpoint the key was sent to: a record kind, or batch.",
                        max_length=16,
                    ),
                ),
                migrations.AddConstraint(
                    model_name="idempotencykey",
                    constraint=models.UniqueConstraint(fields=FIELDS, name="audit_idempotency_key_scope_uniq"),
                ),
            ],
        ),
    ]
