"""Settings for the test suite: a separate embedded data directory so tests never touch run data."""

from .base import *  # noqa: F403
from .base import env

AUTH_MODE = env.str("AUTH_MODE", default="none")
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
# Static files straight from the apps (no collectstatic before tests).
STATIC_ROOT = None  # type: ignore[assignment]
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = True
