from django.apps import AppConfig


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
        # Registers the OpenAPI extensions (drf-spectacular finds them by their import).
        import audit.api.openapi  # noqa: F401
        from audit.integrity.metrics import SealCollector
        from kubernaut_storage.observability.metrics import scrape_collector_register

        # Read from the database at scrape time: the sealing Jobs are never scraped themselves.
        scrape_collector_register(name="audit_seals", collector=SealCollector())
