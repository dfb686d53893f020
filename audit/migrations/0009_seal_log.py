"""The seal log (docs/INTEGRITY.md): one RFC 6962 tree over every seal body, its checkpoints,
their time anchors and witness cosignatures, and what audit_seal last heard from each witness.

Seal n is leaf n - 1; its row keeps the hashes of the complete subtrees its leaf completes
(`kubernaut_integrity.tlog`, about 64 bytes a seal), so any proof is a batch of point reads.
Existing seals get theirs by replaying every body in sequence order; that needs seals numbered
from 1 without a gap, which an intact chain has (audit_verify reports any other).

Checkpoints, anchors and cosignatures are evidence: append-only like the seals. The witness
state is bookkeeping, updated in place.
"""

import django.db.models.deletion
from django.db import migrations, models
from django.db.backends.base.schema import BaseDatabaseSchemaEditor
from django.db.migrations.state import StateApps

# The log's layout is a published format (leaf = seal body, RFC 6962 hashing, the stored
# subtree hashes of `node_home`), so replaying it with the live module gives what sealing stores.
from kubernaut_integrity.tlog import MemoryLog

APPEND_ONLY = ["audit_checkpoints", "audit_checkpoint_cosignatures", "audit_anchors"]
BATCH = 5_000


def log_hashes_backfill(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    log = MemoryLog()
    with schema_editor.connection.cursor() as cursor:
        cursor.execute("ALTER TABLE audit_seals DISABLE TRIGGER audit_seals_append_only")
        while True:
            cursor.execute(
                "SELECT sequence, body FROM audit_seals WHERE sequence > %s ORDER BY sequence LIMIT %s",
                [log.size, BATCH],
            )
            rows = cursor.fetchall()
            if not rows:
                break
            for sequence, body in rows:
                if sequence != log.size + 1:
                    raise RuntimeError(
                        f"seal {sequence} follows seal {log.size}: the seal log needs the seals numbered from 1"
                        " without a gap; restore the missing seals (audit_verify names them) and migrate again"
                    )
                log.append(body.encode())
            cursor.execute(
                "UPDATE audit_seals SET log_hashes = v.hashes"
                " FROM (SELECT unnest(%s::bigint[]), unnest(%s::bytea[])) AS v(sequence, hashes)"
                " WHERE audit_seals.sequence = v.sequence",
                [[sequence for sequence, _ in rows], [log.leaves[sequence - 1] for sequence, _ in rows]],
            )
        cursor.execute("ALTER TABLE audit_seals ENABLE TRIGGER audit_seals_append_only")


class Migration(migrations.Migration):
    dependencies = [
        ("audit", "0008_audit_events"),
    ]

    operations = [
        migrations.AddField(
            model_name="auditseal",
            name="log_hashes",
            field=models.BinaryField(
                null=True,
                help_text="The seal log's subtree hashes this seal completes: 32 bytes each, its leaf hash first.",
            ),
        ),
        migrations.RunPython(log_hashes_backfill, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="auditseal",
            name="log_hashes",
            field=models.BinaryField(
                help_text="The seal log's subtree hashes this seal completes: 32 bytes each, its leaf hash first."
            ),
        ),
        migrations.CreateModel(
            name="AuditCheckpoint",
            fields=[
                (
                    "size",
                    models.BigIntegerField(
                        help_text="Seals in the tree: seals 1 to size.", primary_key=True, serialize=False
                    ),
                ),
                ("root", models.BinaryField(help_text="RFC 6962 root hash of the tree.")),
                ("note", models.TextField(help_text="The checkpoint as a signed note, log signatures only.")),
                ("created_at", models.DateTimeField()),
            ],
            options={"db_table": "audit_checkpoints", "ordering": ["-size"]},
        ),
        migrations.CreateModel(
            name="AuditAnchor",
            fields=[
                (
                    "checkpoint",
                    models.OneToOneField(
                        db_column="checkpoint_size",
                        on_delete=django.db.models.deletion.PROTECT,
                        primary_key=True,
                        related_name="anchor",
                        serialize=False,
                        to="audit.auditcheckpoint",
                    ),
                ),
                ("authority_url", models.CharField(max_length=2048)),
                ("response", models.BinaryField(help_text="The authority's TimeStampResp, DER.")),
                ("gen_time", models.DateTimeField(help_text="The time the authority states.")),
                ("requested_at", models.DateTimeField()),
            ],
            options={"db_table": "audit_anchors", "ordering": ["-checkpoint_id"]},
        ),
        migrations.CreateModel(
            name="AuditCheckpointCosignature",
            fields=[
                ("id", models.BigAutoField(primary_key=True, serialize=False)),
                ("witness_name", models.CharField(max_length=255)),
                ("key_hash", models.BigIntegerField(help_text="The note key hash of the witness key (4 bytes).")),
                (
                    "signature",
                    models.BinaryField(
                        help_text="Timestamp (8 bytes) and Ed25519 signature, as in the note line."
                    ),
                ),
                ("cosigned_at", models.DateTimeField(help_text="The time the cosignature states.")),
                ("received_at", models.DateTimeField()),
                (
                    "checkpoint",
                    models.ForeignKey(
                        db_column="checkpoint_size",
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="cosignatures",
                        to="audit.auditcheckpoint",
                    ),
                ),
            ],
            options={
                "db_table": "audit_checkpoint_cosignatures",
                "constraints": [
                    models.UniqueConstraint(
                        fields=("checkpoint", "witness_name", "key_hash"), name="audit_cosignatures_one_per_witness"
                    )
                ],
            },
        ),
        migrations.CreateModel(
            name="AuditWitnessState",
            fields=[
                (
                    "witness",
                    models.CharField(
                        help_text="Key name + key hash.", max_length=300, primary_key=True, serialize=False
                    ),
                ),
                ("url", models.CharField(max_length=2048)),
                ("cosigned_size", models.BigIntegerField(default=0)),
                (
                    "outcome",
                    models.CharField(
                        choices=[
                            ("cosigned", "Cosigned"),
                            ("unavailable", "Unavailable"),
                            ("refused", "Refused"),
                            ("inconsistent", "Inconsistent"),
                        ],
                        max_length=16,
                    ),
                ),
                ("detail", models.TextField(blank=True)),
                ("attempted_at", models.DateTimeField()),
            ],
            options={"db_table": "audit_witness_state"},
        ),
        migrations.RunSQL(
            "".join(
                f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table}"
                " FOR EACH ROW EXECUTE FUNCTION audit_reject_mutation();"
                for table in APPEND_ONLY
            ),
            reverse_sql="".join(f"DROP TRIGGER {table}_append_only ON {table};" for table in APPEND_ONLY),
        ),
    ]
