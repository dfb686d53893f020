"""Production settings: refuse to start with an unset secret key or with DEBUG on."""

from django.core.exceptions import ImproperlyConfigured

from .base import *  # noqa: F403
from .base import env

SECRET_KEY = env.str("DJANGO_SECRET_KEY", default="")
if not SECRET_KEY or SECRET_KEY == "local-development-only-not-secret":  # noqa: S105 - the dev default
    raise ImproperlyConfigured("DJANGO_SECRET_KEY must be set in production")
if env.bool("DJANGO_DEBUG", default=False):
    raise ImproperlyConfigured("DJANGO_DEBUG must be off in production")
DEBUG = False
AUTH_MODE = env.str("AUTH_MODE", default="tokenreview")
if AUTH_MODE != "tokenreview":
    raise ImproperlyConfigured("production requires AUTH_MODE=tokenreview")
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
# TLS ends at the ingress. HSTS tells browsers (the admin's users) to use https only; off
# (0) by default because it is sticky for its whole lifetime once a browser has seen it.
SECURE_HSTS_SECONDS = env.int("DJANGO_SECURE_HSTS_SECONDS", default=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = False
# Believe X-Forwarded-Proto only when the operator says the ingress sets it (and strips a
# client's own); otherwise any client could claim https.
if env.bool("DJANGO_TRUST_X_FORWARDED_PROTO", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
