"""Settings shared by every environment, read once from the environment (django-environ).

Every knob an operator may turn is an environment variable listed in README.md; nothing else
reads os.environ.
"""

from __future__ import annotations

from pathlib import Path

import environ

from kubernaut_storage.embedded_postgres import embedded_database_settings
from kubernaut_storage.logs import logging_config

BASE_DIR = Path(__file__).resolve().parent.parent.parent

env = environ.Env()

SECRET_KEY = env.str("DJANGO_SECRET_KEY", default="local-development-only-not-secret")
DEBUG = env.bool("DJANGO_DEBUG", default=False)
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]"])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "audit",
    "embeddings",
]

MIDDLEWARE = [
    # Probes are answered first: before host validation (the kubelet's Host is the pod IP),
    # sessions and the access log (kubernaut_storage/health.py).
    "kubernaut_storage.health.ProbeMiddleware",
    # One JSON access line and the latency histogram for every other request.
    "kubernaut_storage.middleware.RequestLogMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "kubernaut_storage.middleware.RequestIdMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "kubernaut_storage.urls"
WSGI_APPLICATION = "kubernaut_storage.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------------
# DATABASE_URL wins; without it the project runs its own PostgreSQL + pgvector from a wheel.
if env.str("DATABASE_URL", default=""):
    DATABASES = {"default": env.db_url("DATABASE_URL")}
else:
    DATABASES = {
        "default": embedded_database_settings(
            data_dir=Path(env.str("EMBEDDED_POSTGRES_DIR", default=str(BASE_DIR / ".data" / "postgres"))),
            database=env.str("EMBEDDED_POSTGRES_DATABASE", default="kubernaut_storage"),
        )
    }
# Persistent connections: a new connection per request halves throughput (DESIGN §4).
DATABASES["default"]["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=300)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DATABASES["default"].setdefault("OPTIONS", {})
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / ".data" / "static"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}

# --- HTTP API -------------------------------------------------------------------------------
# Bodies above this are answered 413 before they are parsed (DESIGN §3: 1 MiB default).
AUDIT_MAX_BODY_BYTES = env.int("AUDIT_MAX_BODY_BYTES", default=1024 * 1024)
# Our parser enforces AUDIT_MAX_BODY_BYTES itself and answers 413 as problem+json.
DATA_UPLOAD_MAX_MEMORY_SIZE = None

# --- Authentication and authorization (issue 4) -------------------------------------------
# AUTH_MODE ("tokenreview" | "none"), KUBERNETES_TOKENREVIEW, AUDIT_WRITERS: see the module.
from .auth import *  # noqa: E402, F403

# --- Operations: probes, draining (issue 4) ------------------------------------------------
# Bounds how long a probe or a request waits for an unreachable database server.
DATABASES["default"]["OPTIONS"].setdefault("connect_timeout", env.int("DATABASE_CONNECT_TIMEOUT", default=5))
# Set by the gunicorn config for its workers: while this file exists the process is draining
# and /readyz answers 503 (kubernaut_storage/serving.py). Not an operator setting.
DRAIN_FILE = env.str("KUBERNAUT_DRAIN_FILE", default="")
# --- end of issue 4 block ------------------------------------------------------------------

REST_FRAMEWORK = {
    "DEFAULT_PARSER_CLASSES": ["kubernaut_storage.parsers.StrictJSONParser"],
    "DEFAULT_RENDERER_CLASSES": ["kubernaut_storage.renderers.FastJSONRenderer"],
    "DEFAULT_AUTHENTICATION_CLASSES": [],
    "DEFAULT_PERMISSION_CLASSES": [],
    "UNAUTHENTICATED_USER": None,
    "EXCEPTION_HANDLER": "kubernaut_storage.errors.problem_exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "kubernaut-storage",
    "DESCRIPTION": "Audit-trail write service of the Kubernaut remediation platform.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "kubernaut_storage.openapi.camelize_component_fields",
    ],
}

# --- Embeddings -----------------------------------------------------------------------------
# The local model's intra-op threads per process; several workers/threads embed in parallel.
EMBEDDING_LOCAL_THREADS = env.int("EMBEDDING_LOCAL_THREADS", default=1)

# --- Logging (issue 4) ---------------------------------------------------------------------
# One JSON object per line on stderr, the same shape as gunicorn's own lines (logs.py).
LOGGING_CONFIG = "kubernaut_storage.logs.logging_configure"
LOGGING = logging_config(level=env.str("LOG_LEVEL", default="INFO"))
