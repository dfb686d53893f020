"""The project's database backend: Django's PostgreSQL backend with django-prometheus' query
metrics and, when DATABASE_URL is unset, an embedded server started on first connection."""
