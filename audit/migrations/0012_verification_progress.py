"""audit_verify --incremental keeps where it stands in the row recording each run."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("audit", "0011_late_writes_named")]

    operations = [
        migrations.AddField(
            model_name="auditverification",
            name="incremental",
            field=models.BooleanField(
                default=False,
                db_default=False,
                help_text="An incremental run: the newly sealed windows and a share of the old ones.",
            ),
        ),
        migrations.AddField(
            model_name="auditverification",
            name="progress",
            field=models.JSONField(
                blank=True,
                help_text="Where incremental verification stands, for the next incremental run "
                "(audit/integrity/incremental.py): the last seal checked and the rotating sample's position.",
                null=True,
            ),
        ),
    ]
