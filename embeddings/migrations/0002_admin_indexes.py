"""Indexes for the read-only admin: one (filter column, partition key) index per list filter,
and a pattern-ops index for the name prefix search (docs/ADMIN.md).

Created on the partitioned parent, so every partition, present and future, gets them. A
partitioned parent cannot CREATE INDEX CONCURRENTLY: on a large live database, create each
partition's index CONCURRENTLY first, then this migration only attaches them (docs/ADMIN.md).
"""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('embeddings', '0001_initial'),
    ]

    operations = [
        migrations.AddIndex(
            model_name='incidentembedding',
            index=models.Index(fields=['audit_recorded_at'], name='incident_emb_recorded_idx'),
        ),
        migrations.AddIndex(
            model_name='incidentembedding',
            index=models.Index(fields=['audit_type', 'audit_recorded_at'], name='incident_emb_type_rec_idx'),
        ),
        migrations.AddIndex(
            model_name='incidentembedding',
            index=models.Index(fields=['model', 'audit_recorded_at'], name='incident_emb_model_rec_idx'),
        ),
    ]
