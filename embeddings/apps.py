from django.apps import AppConfig


class EmbeddingsConfig(AppConfig):
    name = "embeddings"
    verbose_name = "Incident embeddings"
    #: Partitioned like the audit tables, so retention drops a month of both together.
    partitioned_tables = {"incident_embeddings": "audit_recorded_at"}

    def ready(self) -> None:
        # Importing the services registers the setting_changed receiver that rebuilds the
        # provider chain and cache when a test overrides their settings, even before the first
        # embedding.
        from embeddings.services import embedding_circuit_report
        from kubernaut_storage.observability.health import readiness_detail_register

        # Shown in /readyz, never failing it: with the circuit open writes still succeed
        # (fallback or deferral), and an unready pod would only move its load onto the others.
        readiness_detail_register(name="embedding_circuit", detail=embedding_circuit_report)
