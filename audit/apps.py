from django.apps import AppConfig


class AuditConfig(AppConfig):
    name = "audit"
    verbose_name = "Audit trail"

    def ready(self) -> None:
        # Registers the OpenAPI description of the bearer-token authentication.
        import kubernaut_storage.openapi  # noqa: F401
