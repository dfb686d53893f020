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
        # Registers the OpenAPI description of the bearer-token authentication.
        import kubernaut_storage.http.openapi  # noqa: F401
