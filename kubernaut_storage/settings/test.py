"""Settings for the test suite: the same embedded server as `local`, but pytest-django's own
`test_…` database, so tests never touch run data."""

from .base import *  # noqa: F403
from .base import env

AUTH_MODE = env.str("AUTH_MODE", default="none")
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
# Static files straight from the apps (no collectstatic before tests).
STATIC_ROOT = None  # type: ignore[assignment]
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = True
# Tests store rows dated in past months (retention, partitions); the tests of the write lag
# turn it on for their own sessions or in the database.
AUDIT_WRITE_MAX_LAG_SECONDS = 0
# Tests change what /readyz checks between two probes.
READYZ_CACHE_SECONDS = 0.0
