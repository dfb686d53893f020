"""Indexes for the read-only admin: one (filter column, partition key) index per list filter,
and a pattern-ops index for the name prefix search (docs/ADMIN.md).

Created on the partitioned parent, so every partition, present and future, gets them. A
partitioned parent cannot CREATE INDEX CONCURRENTLY: on a large live database, create each
partition's index CONCURRENTLY first, then this migration only attaches them (docs/ADMIN.md).
"""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('audit', '0002_append_only_and_partitions'),
    ]

    operations = [
        migrations.AddIndex(
            model_name='aianalysisaudit',
            index=models.Index(fields=['phase', 'recorded_at'], name='aianalysisaudit_phase_rec_idx'),
        ),
        migrations.AddIndex(
            model_name='aianalysisaudit',
            index=models.Index(fields=['namespace', 'recorded_at'], name='aianalysisaudit_ns_rec_idx'),
        ),
        migrations.AddIndex(
            model_name='aianalysisaudit',
            index=models.Index(fields=['name'], name='aianalysisaudit_name_like_idx', opclasses=['varchar_pattern_ops']),
        ),
        migrations.AddIndex(
            model_name='aianalysisaudit',
            index=models.Index(fields=['signal_type', 'recorded_at'], name='audit_ai_signal_rec_idx'),
        ),
        migrations.AddIndex(
            model_name='aianalysisaudit',
            index=models.Index(fields=['requires_approval', 'recorded_at'], name='audit_ai_approval_rec_idx'),
        ),
        migrations.AddIndex(
            model_name='executionaudit',
            index=models.Index(fields=['phase', 'recorded_at'], name='executionaudit_phase_rec_idx'),
        ),
        migrations.AddIndex(
            model_name='executionaudit',
            index=models.Index(fields=['namespace', 'recorded_at'], name='executionaudit_ns_rec_idx'),
        ),
        migrations.AddIndex(
            model_name='executionaudit',
            index=models.Index(fields=['name'], name='executionaudit_name_like_idx', opclasses=['varchar_pattern_ops']),
        ),
        migrations.AddIndex(
            model_name='executionaudit',
            index=models.Index(fields=['target_type', 'recorded_at'], name='audit_exe_target_rec_idx'),
        ),
        migrations.AddIndex(
            model_name='executionaudit',
            index=models.Index(fields=['is_rolled_back', 'recorded_at'], name='audit_exe_rollback_rec_idx'),
        ),
        migrations.AddIndex(
            model_name='remediationaudit',
            index=models.Index(fields=['phase', 'recorded_at'], name='remediationaudit_phase_rec_idx'),
        ),
        migrations.AddIndex(
            model_name='remediationaudit',
            index=models.Index(fields=['namespace', 'recorded_at'], name='remediationaudit_ns_rec_idx'),
        ),
        migrations.AddIndex(
            model_name='remediationaudit',
            index=models.Index(fields=['name'], name='remediationaudit_name_like_idx', opclasses=['varchar_pattern_ops']),
        ),
        migrations.AddIndex(
            model_name='remediationaudit',
            index=models.Index(fields=['signal_type', 'recorded_at'], name='audit_rem_signal_rec_idx'),
        ),
        migrations.AddIndex(
            model_name='remediationaudit',
            index=models.Index(fields=['target_type', 'recorded_at'], name='audit_rem_target_rec_idx'),
        ),
        migrations.AddIndex(
            model_name='remediationaudit',
            index=models.Index(fields=['environment', 'recorded_at'], name='audit_rem_env_rec_idx'),
        ),
        migrations.AddIndex(
            model_name='remediationaudit',
            index=models.Index(fields=['priority', 'recorded_at'], name='audit_rem_prio_rec_idx'),
        ),
        migrations.AddIndex(
            model_name='workflowaudit',
            index=models.Index(fields=['phase', 'recorded_at'], name='workflowaudit_phase_rec_idx'),
        ),
        migrations.AddIndex(
            model_name='workflowaudit',
            index=models.Index(fields=['namespace', 'recorded_at'], name='workflowaudit_ns_rec_idx'),
        ),
        migrations.AddIndex(
            model_name='workflowaudit',
            index=models.Index(fields=['name'], name='workflowaudit_name_like_idx', opclasses=['varchar_pattern_ops']),
        ),
    ]
