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
        "audit_events": "recorded_at",
    }

    def ready(self) -> None:
        # Registers the OpenAPI extensions (drf-spectacular finds them by their import).
        import audit.api.openapi  # noqa: F401
        from audit.integrity.metrics import SealCollector
        from kubernaut_storage.observability.metrics import scrape_collector_register

        # Read from the database at scrape time: the sealing Jobs are never scraped themselves.
        scrape_collector_register(name="audit_seals", collector=SealCollector())
        from audit.write.lag_bound import write_lag_bound_apply

        post_migrate.connect(write_lag_bound_apply, sender=self, dispatch_uid="audit-write-lag-bound")
