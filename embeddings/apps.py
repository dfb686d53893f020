from django.apps import AppConfig


class EmbeddingsConfig(AppConfig):
    name = "embeddings"
    verbose_name = "Incident embeddings"
    #: Partitioned like the audit tables, so retention drops a month of both together.
    partitioned_tables = {"incident_embeddings": "audit_recorded_at"}

    def ready(self) -> None:
        # Registers the setting_changed receiver that rebuilds the provider chain and cache
        # when a test overrides their settings, even before the first embedding.
        from embeddings import services  # noqa: F401
