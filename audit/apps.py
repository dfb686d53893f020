from django.apps import AppConfig
from django.db.models.signals import post_migrate


class AuditConfig(AppConfig):
    name = "audit"
    verbose_name = "Audit trail"
    #: Range-partitioned by month on the key column (kubernaut_storage/database/partitioning.py).
    partitioned_tables = {
        "audit_remediation": "recorded_at",
        "audit_aianalysis": "recorded_at",
        "audit_workflow": "recorded_at",
        "audit_execution": "recorded_at",
    }

    def ready(self) -> None:
        # Registers the OpenAPI description of the bearer-token authentication.
        import kubernaut_storage.http.openapi  # noqa: F401
        from audit.write.lag_bound import write_lag_bound_apply

        post_migrate.connect(write_lag_bound_apply, sender=self, dispatch_uid="audit-write-lag-bound")
