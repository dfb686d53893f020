"""An index on when each vector was stored (`recorded_at`): sealing and verification read the
embeddings of a window of it (docs/INTEGRITY.md), and the table is partitioned on the audit
row's time instead, so without it every seal would scan every partition.

Created on the partitioned parent, so every partition gets it; on a large live database create
each partition's index CONCURRENTLY first, as for the admin indexes (docs/ADMIN.md).
"""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('embeddings', '0003_audit_type_without_choices'),
    ]

    operations = [
        migrations.AddIndex(
            model_name='incidentembedding',
            index=models.Index(fields=['recorded_at'], name='incident_emb_stored_idx'),
        ),
    ]
