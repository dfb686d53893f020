"""Settings shared by every environment, read once from the environment (django-environ).

Every knob an operator may turn is an environment variable listed in README.md; nothing else
reads os.environ.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

from kubernaut_integrity.cosignature import cosigner_verifier_from_vkey
from kubernaut_integrity.note import name_valid as note_name_valid
from kubernaut_storage.database.embedded_postgres import embedded_database_settings
from kubernaut_storage.database.reconnection import reconnect_while_requests_wait
from kubernaut_storage.observability.logs import logging_config

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
    # Admin sign-in lockouts (kubernaut_storage/admin/authentication.py).
    "axes",
]

MIDDLEWARE = [
    # Probes are answered first: before host validation (the kubelet's Host is the pod IP),
    # sessions and the access log (kubernaut_storage/observability/health.py).
    "kubernaut_storage.observability.health.ProbeMiddleware",
    # One JSON access line and the latency histogram for every other request.
    "kubernaut_storage.http.middleware.RequestLogMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "kubernaut_storage.http.middleware.RequestIdMiddleware",
    # Before anything reads a body (the session, the CSRF check, a view): multipart and
    # oversized or unbounded forms are refused by their headers (kubernaut_storage/admin/form_bodies.py).
    "kubernaut_storage.admin.form_bodies.FormBodyGuardMiddleware",
    # Before the session: its queries, too, run under the admin's statement timeout.
    "kubernaut_storage.admin.guard.AdminGuardMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Remembers the browsers that signed in (kubernaut_storage/admin/sign_in_limits.py).
    "kubernaut_storage.admin.sign_in_limits.KnownBrowserMiddleware",
    # Last, as django-axes requires: it answers a locked-out sign-in.
    "axes.middleware.AxesMiddleware",
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
# Either way the ENGINE is the project's backend: PostgreSQL with django-prometheus' query
# metrics (exported on 9090 with ours), which starts the embedded server on the first
# connection (never here: importing settings starts nothing). Of django-prometheus only the
# database part is used: its exporter port cannot serve several workers, and its request
# middleware added ~10 % Python work per write to what RequestLogMiddleware already measures
# (`python -m bench prometheus-cost`, docs/PERFORMANCE.md).
if env.str("DATABASE_URL", default=""):
    DATABASES = {"default": {**env.db_url("DATABASE_URL"), "ENGINE": "kubernaut_storage.database"}}
else:
    DATABASES = {
        "default": embedded_database_settings(
            data_dir=Path(env.str("EMBEDDED_POSTGRES_DIR", default=str(BASE_DIR / ".data" / "postgres"))),
            database=env.str("EMBEDDED_POSTGRES_DATABASE", default="kubernaut_storage"),
        )
    }
DATABASES["default"].setdefault("OPTIONS", {})
# Connections are reused: a new connection per request halves throughput. By
# default from a bounded pool per process (psycopg_pool through Django's "pool" option) rather
# than one persistent connection per thread: a write's thread waits ~100 ms on the embedding
# API and a few ms on PostgreSQL, so the 24 threads of a worker share a few connections, and a
# pod holds at most GUNICORN_WORKERS x DATABASE_POOL_SIZE of them (3 x 8). 0: no pool, one
# persistent connection per thread for DATABASE_CONN_MAX_AGE seconds.
DATABASE_POOL_SIZE = env.int("DATABASE_POOL_SIZE", default=8)
if DATABASE_POOL_SIZE > 0:
    DATABASES["default"]["CONN_MAX_AGE"] = 0  # the pool keeps them; Django requires 0
    # Django's health check with a pool is a round trip on every checkout. A connection that
    # broke while idle fails its first statement instead, which the write path retries on a
    # working one (kubernaut_storage/database/errors.py); the pool then drops it, and the idle ones the
    # same restart broke (kubernaut_storage/database/lost_connections.py).
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = False
    DATABASES["default"]["OPTIONS"]["pool"] = {
        "min_size": min(2, DATABASE_POOL_SIZE),
        "max_size": DATABASE_POOL_SIZE,
        # A thread waits this long for a connection. Past it the database is down or saturated
        # and the write answers 503 at once (kubernaut_storage/database/errors.py): waiting again cannot help.
        "timeout": 2.0,
        "max_idle": 300.0,
        # A failed connection attempt is retried with exponential backoff (1, 2, 4 ... 64 s)
        # until reconnect_timeout, and while one is scheduled the pool starts no other: with
        # psycopg_pool's 300 s default a pod came back up to ~35 s after the database did.
        # Giving up after the timeout above keeps the attempts ~1 s apart (at 0, ~1 and 2 s);
        # then the next one starts at once while requests wait, or with the next request that
        # comes. Whatever the outage's length, the pool finds the database within ~1 s of its
        # return while requests want a connection. It still grows one connection at a time:
        # however many requests wait, a process has one attempt under way (plus, in an
        # outage's first 2 s, one per connection it lost).
        "reconnect_timeout": 2.0,
        "reconnect_failed": reconnect_while_requests_wait,
    }
else:
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=300)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
# Django turns psycopg's prepared statements off; the write path's statement, sent with
# server-side binding, costs PostgreSQL ~25 % less CPU prepared (docs/PERFORMANCE.md). Off for
# a pooler that cannot keep them (PgBouncer in transaction mode before 1.21).
if env.bool("DATABASE_PREPARED_STATEMENTS", default=True):
    DATABASES["default"]["OPTIONS"].setdefault("prepare_threshold", 5)
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
# Bodies above this are answered 413 before they are parsed.
AUDIT_MAX_BODY_BYTES = env.int("AUDIT_MAX_BODY_BYTES", default=1024 * 1024)
# Records one POST /api/v1/audit/batch may hold (within AUDIT_MAX_BODY_BYTES); more is a 413.
AUDIT_BATCH_MAX_RECORDS = env.int("AUDIT_BATCH_MAX_RECORDS", default=500)
if AUDIT_BATCH_MAX_RECORDS < 1:
    raise ImproperlyConfigured("AUDIT_BATCH_MAX_RECORDS must be >= 1")
# Records of many-record requests a worker holds at once, across its threads; beyond, 503 +
# Retry-After (audit/write/records_in_flight.py). One maximum-size batch per worker: what the
# pod's 1536 Mi holds with three workers embedding with the local model (docs/SECURITY.md).
AUDIT_RECORDS_IN_FLIGHT = env.int("AUDIT_RECORDS_IN_FLIGHT", default=500)
if AUDIT_RECORDS_IN_FLIGHT < 1:
    raise ImproperlyConfigured("AUDIT_RECORDS_IN_FLIGHT must be >= 1")
# Upstream Kubernaut's audit events (POST /api/v1/audit/events[/batch], docs/UPSTREAM.md). Its
# busiest controllers send batches of 1000; a batch over the limit is a 400 the client drops.
AUDIT_EVENTS_BATCH_MAX = env.int("AUDIT_EVENTS_BATCH_MAX", default=1000)
if AUDIT_EVENTS_BATCH_MAX < 1:
    raise ImproperlyConfigured("AUDIT_EVENTS_BATCH_MAX must be >= 1")
# The events endpoints' body limit: 1000 events of 16 KiB each. Upstream's events are 0.5-2 KB
# (1000 of them 1-2 MB); a body is parsed twice to keep numbers exact, which peaks at several
# times its size, so the limit is what a worker can hold, not 1000 payloads of 256 KiB.
AUDIT_EVENTS_MAX_BODY_BYTES = env.int("AUDIT_EVENTS_MAX_BODY_BYTES", default=16 * 1024 * 1024)
# A byte-identical audit-event body from the same caller within this window (at least, at most
# twice it) is a retry, answered with the first answer (audit/write/events.py). Upstream's client
# retries after 10 s, three attempts 1 s and 2 s apart; 0 turns the recognition off.
AUDIT_EVENTS_DEDUPE_SECONDS = env.int("AUDIT_EVENTS_DEDUPE_SECONDS", default=300)
# How long an audit-event batch waits for room in the worker's records budget before a 503:
# upstream's client gives up on an answer after 10 s, and a batch of 1000 takes well under a
# second to store (audit/write/records_in_flight.py).
# Audit events never wait for a model: "deferred" queues each in the embedding backlog, in its
# write's transaction, for embeddings_backfill (similarity search then covers events); "off"
# leaves them out of it.
AUDIT_EVENTS_EMBEDDING = env.str("AUDIT_EVENTS_EMBEDDING", default="deferred")
if AUDIT_EVENTS_EMBEDDING not in ("deferred", "off"):
    raise ImproperlyConfigured("AUDIT_EVENTS_EMBEDDING must be deferred or off")
AUDIT_EVENTS_ADMISSION_WAIT_SECONDS = env.float("AUDIT_EVENTS_ADMISSION_WAIT_SECONDS", default=3.0)
if AUDIT_EVENTS_DEDUPE_SECONDS < 0:
    raise ImproperlyConfigured("AUDIT_EVENTS_DEDUPE_SECONDS must be >= 0")
# The audit API's parser reads its stream up to AUDIT_MAX_BODY_BYTES itself (413 as
# problem+json). Forms (only the admin's: sign-in and sign-out, a few hundred bytes) are
# refused by their Content-Length above this before anything reads them, and a multipart body
# anywhere (kubernaut_storage/admin/form_bodies.py). Under Django's 2.5 MB default, 80
# connections posting 2.4 MB forms grew a worker by 1.36 GB (each read and parsed before the
# CSRF check refused it); refused by their length, by 19 MB.
DATA_UPLOAD_MAX_MEMORY_SIZE = 64 * 1024
# No view takes files: nothing is ever spooled to /tmp (a memory-backed emptyDir in the pod).
FILE_UPLOAD_HANDLERS: list[str] = []

# --- Authentication and authorization ------------------------------------------------------
# AUTH_MODE ("tokenreview" | "none"), KUBERNETES_TOKENREVIEW, AUDIT_WRITERS: see the module.
from .auth import *  # noqa: E402, F403

# --- Operations: probes, draining -----------------------------------------------------------
# Bounds how long a probe or a request waits for an unreachable database server.
DATABASES["default"]["OPTIONS"].setdefault("connect_timeout", env.int("DATABASE_CONNECT_TIMEOUT", default=5))
# Set by the gunicorn config for its workers: while this file exists the process is draining
# and /readyz answers 503 (kubernaut_storage/serving/hooks.py). Not an operator setting.
DRAIN_FILE = env.str("KUBERNAUT_DRAIN_FILE", default="")
# /readyz reuses its checks' result this long per process (probes every few seconds see a fresh
# one; a flood of unauthenticated probes costs the database one round per second per process).
READYZ_CACHE_SECONDS = 1.0
# Admin sign-in: django-axes refuses a locked-out (username, client address) before any lookup
# or hash; the model backend gives its pooled connection back before hashing.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "kubernaut_storage.admin_auth.PoolReleasingModelBackend",
]
# Five wrong passwords for one username from one address lock that pair out for 15 minutes.
# Not the address alone: behind an ingress every auditor shares its address, and one attacker
# would lock them all out; not the username alone, or anyone could lock an auditor out.
AXES_FAILURE_LIMIT = 5
AXES_COOLOFF_TIME = dt.timedelta(minutes=15)
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
# A refused try is not counted: it costs no write, and a lockout ends a cool-off after the
# failure that caused it however long the tries go on.
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
# One address, whatever the usernames (password spraying: 90 usernames at 6.8 tries a second
# before), is refused after this many failures within the cool-off: 2 tries a minute. Behind
# an ingress all auditors share its address: a browser that signed in before as the auditor it
# names is exempt for this many days (kubernaut_storage/admin/sign_in_limits.py).
AXES_HANDLER = "kubernaut_storage.admin.sign_in_limits.AddressLimitedAxesHandler"
ADMIN_SIGN_IN_ADDRESS_FAILURE_LIMIT = env.int("ADMIN_SIGN_IN_ADDRESS_FAILURE_LIMIT", default=30)
ADMIN_KNOWN_BROWSER_DAYS = 30
# One row per failure is enough; a row per successful sign-in is the access log's job.
AXES_DISABLE_ACCESS_LOG = True
# No banner line at every process start; lockouts are still logged.
AXES_VERBOSE = False
# The peer's address only, never a client's own X-Forwarded-For (which would pick its own key).
AXES_IPWARE_META_PRECEDENCE_ORDER = ["REMOTE_ADDR"]
# Whether this process serves the auditors' admin at /admin/ (off in API-only pods, whose
# database role cannot read the sign-in tables: docs/DATABASE_ROLES.md).
ADMIN_ENABLED = env.bool("ADMIN_ENABLED", default=True)
# No query of an admin request runs longer (kubernaut_storage/admin/guard.py).
ADMIN_STATEMENT_TIMEOUT_SECONDS = env.float("ADMIN_STATEMENT_TIMEOUT_SECONDS", default=5.0)

REST_FRAMEWORK = {
    "DEFAULT_PARSER_CLASSES": ["kubernaut_storage.http.parsers.StrictJSONParser"],
    "DEFAULT_RENDERER_CLASSES": ["kubernaut_storage.http.renderers.FastJSONRenderer"],
    "DEFAULT_AUTHENTICATION_CLASSES": [],
    "DEFAULT_PERMISSION_CLASSES": [],
    "UNAUTHENTICATED_USER": None,
    "EXCEPTION_HANDLER": "kubernaut_storage.http.errors.problem_exception_handler",
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
    # 3.1 is JSON Schema 2020-12: `propertyNames` (the rules for map keys) exists only there.
    "OAS_VERSION": "3.1.0",
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "audit.api.openapi.camelize_component_fields",
        "audit.api.openapi.close_request_bodies",
        "kubernaut_storage.http.openapi.merge_blank_alternatives",
        "kubernaut_storage.http.openapi.document_response_headers",
        "audit.api.openapi.document_write_headers",
        "audit.api.openapi.bound_event_batches",
    ],
}

# --- Embeddings -----------------------------------------------------------------------------
# The provider chain and the cache are built from these once per process, lazily
# (embeddings/services.py); changing one of them in a test rebuilds both.
#
# The local model's intra-op threads per process; several workers/threads embed in parallel.
EMBEDDING_LOCAL_THREADS = env.int("EMBEDDING_LOCAL_THREADS", default=1)
# Another ONNX export of all-MiniLM-L6-v2 (same tokenizer and outputs); empty: the packaged one.
EMBEDDING_LOCAL_MODEL_PATH = env.str("EMBEDDING_LOCAL_MODEL_PATH", default="") or None
# The primary is `openai` when a key is configured, else the local model. OPENAI_API_KEY is
# accepted too because that is where the key usually already is.
EMBEDDING_OPENAI_API_KEY = env.str("EMBEDDING_OPENAI_API_KEY", default="") or env.str("OPENAI_API_KEY", default="")
# Any OpenAI-compatible server; empty means OpenAI itself.
EMBEDDING_OPENAI_BASE_URL = env.str("EMBEDDING_OPENAI_BASE_URL", default="") or None
EMBEDDING_OPENAI_MODEL = env.str("EMBEDDING_OPENAI_MODEL", default="text-embedding-3-small")
# Unset: the model's native width (1536 for text-embedding-3-small).
EMBEDDING_OPENAI_DIMENSIONS = env.int("EMBEDDING_OPENAI_DIMENSIONS", default=None)
# One call's timeout, and the time within which retries of the primary may start. A write
# waits at most about budget + timeout for the primary before the fallback answers.
EMBEDDING_OPENAI_TIMEOUT_S = env.float("EMBEDDING_OPENAI_TIMEOUT_S", default=2.0)
EMBEDDING_RETRY_BUDGET_S = env.float("EMBEDDING_RETRY_BUDGET_S", default=2.0)
# Calls to the openai provider one process makes at once; texts that miss the cache while
# every slot is busy queue and go out together in the next call (embeddings/coalescing.py).
EMBEDDING_OPENAI_MAX_IN_FLIGHT = env.int("EMBEDDING_OPENAI_MAX_IN_FLIGHT", default=4)
# "local": a failing primary falls back to the local model. "none": defer instead,
# so every vector ends up made by the primary (one model to search) once backfilled.
EMBEDDING_FALLBACK = env.str("EMBEDDING_FALLBACK", default="local")
# The primary's circuit breaker: after this many consecutive failed calls, writes skip it (go
# to the fallback, or defer) for the cool-down, then one probe call at a time tries it again.
EMBEDDING_CIRCUIT_FAILURES = env.int("EMBEDDING_CIRCUIT_FAILURES", default=5)
EMBEDDING_CIRCUIT_TIMEOUTS = env.int("EMBEDDING_CIRCUIT_TIMEOUTS", default=2)
EMBEDDING_CIRCUIT_COOLDOWN_S = env.float("EMBEDDING_CIRCUIT_COOLDOWN_S", default=10.0)
# Vectors are cached by SHA-256 of (model, text); 0 turns the cache off.
EMBEDDING_CACHE_TTL_S = env.float("EMBEDDING_CACHE_TTL_S", default=300.0)
# Set: the cache is Redis (shared by every worker and pod); unset: memory of each process.
REDIS_URL = env.str("REDIS_URL", default="")


def embedding_redis_cache(location: str) -> dict[str, object]:
    """The CACHES["embeddings"] entry for a Redis at `location` (also used by the tests)."""
    return {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": location,
        "KEY_PREFIX": "kubernaut-storage:embedding",
        "OPTIONS": {
            # A miss costs ~10 ms (local model) to ~200 ms (OpenAI): waiting longer than that
            # for the cache can only lose. A dead Redis then costs one short timeout before
            # the circuit breaker in embeddings/cache.py stops asking it for a while.
            "SOCKET_CONNECT_TIMEOUT": 0.1,
            "SOCKET_TIMEOUT": 0.1,
        },
    }


# Refuse a bad value at start-up rather than answer every write 500 once it is first used.
if EMBEDDING_FALLBACK not in ("local", "none"):
    raise ImproperlyConfigured("EMBEDDING_FALLBACK must be 'local' or 'none'")
if EMBEDDING_OPENAI_TIMEOUT_S <= 0 or EMBEDDING_RETRY_BUDGET_S <= 0 or EMBEDDING_CACHE_TTL_S < 0:
    raise ImproperlyConfigured(
        "EMBEDDING_OPENAI_TIMEOUT_S and EMBEDDING_RETRY_BUDGET_S must be positive, EMBEDDING_CACHE_TTL_S >= 0"
    )
if EMBEDDING_CIRCUIT_FAILURES < 1 or EMBEDDING_CIRCUIT_TIMEOUTS < 1 or EMBEDDING_CIRCUIT_COOLDOWN_S <= 0:
    raise ImproperlyConfigured(
        "EMBEDDING_CIRCUIT_FAILURES and EMBEDDING_CIRCUIT_TIMEOUTS must be >= 1, EMBEDDING_CIRCUIT_COOLDOWN_S positive"
    )
if EMBEDDING_OPENAI_MAX_IN_FLIGHT < 1:
    raise ImproperlyConfigured("EMBEDDING_OPENAI_MAX_IN_FLIGHT must be >= 1")
if EMBEDDING_OPENAI_DIMENSIONS is not None and EMBEDDING_OPENAI_DIMENSIONS < 1:
    raise ImproperlyConfigured("EMBEDDING_OPENAI_DIMENSIONS must be positive when set")

#: Entries of the in-process embedding cache (no REDIS_URL). At 1536 float32 (6 KiB) that
#: bounds it near 24 MiB per process; at 384 (the local model), 6 MiB.
EMBEDDING_MEMORY_CACHE_ENTRIES = 4096
CACHES: dict[str, dict[str, object]] = {
    "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
    "embeddings_memory": {
        "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
        "LOCATION": "kubernaut-storage-embeddings",
        # Culling 1/CULL_FREQUENCY of the entries when full: one, the least recently used.
        "OPTIONS": {"MAX_ENTRIES": EMBEDDING_MEMORY_CACHE_ENTRIES, "CULL_FREQUENCY": EMBEDDING_MEMORY_CACHE_ENTRIES},
    },
}
if REDIS_URL:
    CACHES["embeddings"] = embedding_redis_cache(REDIS_URL)

# --- Auditors and operators -----------------------------------------------------------------
# Where `audit_retention` writes partition archives (Zstandard JSON Lines) and their manifests.
AUDIT_ARCHIVE_DIR = Path(env.str("AUDIT_ARCHIVE_DIR", default=str(BASE_DIR / ".data" / "archives")))
# The admin shows timestamps to the second, ISO-like (kubernaut_storage/formats/en/formats.py).
FORMAT_MODULE_PATH = ["kubernaut_storage.formats"]

# --- Sealed audit history (docs/INTEGRITY.md) -------------------------------------------------
# `audit_seal` seals each window of this many seconds of recorded_at once it ended more than
# AUDIT_SEAL_SETTLE_SECONDS ago. Windows are aligned to the epoch and must divide a day, so no
# window spans two monthly partitions.
AUDIT_SEAL_WINDOW_SECONDS = env.int("AUDIT_SEAL_WINDOW_SECONDS", default=60)
if AUDIT_SEAL_WINDOW_SECONDS < 1 or 86400 % AUDIT_SEAL_WINDOW_SECONDS:
    raise ImproperlyConfigured("AUDIT_SEAL_WINDOW_SECONDS must divide 86400 (a day)")
# Longer than a write can take from taking its recorded_at to committing (bounded by
# AUDIT_WRITE_MAX_LAG_SECONDS and the runtime role's statement and idle timeouts).
AUDIT_SEAL_SETTLE_SECONDS = env.int("AUDIT_SEAL_SETTLE_SECONDS", default=60)
# The database refuses a row whose recorded_at is more than this behind its INSERT statement's
# start; 0 leaves it unchecked. Held by the database, where the API pods' role cannot change
# it: `manage.py migrate` (the owner) writes it there (audit/write/lag_bound.py).
AUDIT_WRITE_MAX_LAG_SECONDS = env.int("AUDIT_WRITE_MAX_LAG_SECONDS", default=10)
if AUDIT_WRITE_MAX_LAG_SECONDS > 0 and AUDIT_WRITE_MAX_LAG_SECONDS >= AUDIT_SEAL_SETTLE_SECONDS:
    raise ImproperlyConfigured("AUDIT_WRITE_MAX_LAG_SECONDS must be below AUDIT_SEAL_SETTLE_SECONDS")
# The copy of every seal outside the database (a volume, a synced bucket, WORM storage).
AUDIT_SEAL_DIR = Path(env.str("AUDIT_SEAL_DIR", default=str(BASE_DIR / ".data" / "seals")))
# The Ed25519 signing key (PEM), for `audit_seal` only: the API pods never need it.
AUDIT_SEAL_PRIVATE_KEY_FILE = env.str("AUDIT_SEAL_PRIVATE_KEY_FILE", default="")
# Trusted public keys (PEM files, comma-separated) for `audit_verify` and `audit_archive_verify`
# when no --public-key is given: every key that ever signed, to verify across a rotation.
AUDIT_SEAL_PUBLIC_KEY_FILES = env.list("AUDIT_SEAL_PUBLIC_KEY_FILES", default=[])
# `audit_verify` reports a closed window still unsealed this long after it ended.
AUDIT_SEAL_MAX_LAG_SECONDS = env.int("AUDIT_SEAL_MAX_LAG_SECONDS", default=900)
# `audit_verify --incremental` checks all sealed history again over this many days.
AUDIT_VERIFY_PERIOD_DAYS = env.float("AUDIT_VERIFY_PERIOD_DAYS", default=30.0)

# --- The seal log: checkpoints, time anchors, witnesses (docs/INTEGRITY.md) -------------------
# The log's name in its checkpoints and the name of its note keys: one per deployment, e.g.
# `audit.example.com/kubernaut-prod`, so that no checkpoint of one log passes for another's.
AUDIT_LOG_ORIGIN = env.str("AUDIT_LOG_ORIGIN", default="kubernaut-storage/audit-seals")
if not note_name_valid(AUDIT_LOG_ORIGIN):
    raise ImproperlyConfigured("AUDIT_LOG_ORIGIN must be non-empty, without spaces or '+'")
# The log's note signing key(s) (`log-signing-key`, written by audit_keygen), for `audit_seal`
# only. Comma-separated: during a rotation the old and the new key both sign every checkpoint.
# Unset: the seal log still grows, but no checkpoint is signed.
AUDIT_LOG_PRIVATE_KEY_FILE = env.list("AUDIT_LOG_PRIVATE_KEY_FILE", default=[])
# The log's verifier keys (`log-key.vkey` files, comma-separated) `audit_verify` trusts when no
# --log-key is given: every key that ever signed a checkpoint.
AUDIT_LOG_PUBLIC_KEY_FILES = env.list("AUDIT_LOG_PUBLIC_KEY_FILES", default=[])
# An RFC 3161 time-stamp authority (`https://…`): `audit_seal` has it time-stamp the latest
# checkpoint once every AUDIT_ANCHOR_INTERVAL_SECONDS. Unset: no anchors.
AUDIT_TSA_URL = env.str("AUDIT_TSA_URL", default="")
AUDIT_ANCHOR_INTERVAL_SECONDS = env.int("AUDIT_ANCHOR_INTERVAL_SECONDS", default=600)
if AUDIT_ANCHOR_INTERVAL_SECONDS < 1:
    raise ImproperlyConfigured("AUDIT_ANCHOR_INTERVAL_SECONDS must be at least 1")
# The authority's root certificate(s) (PEM files, comma-separated): an answer is stored only
# when it chains to one, and `audit_verify` checks the stored anchors against them.
AUDIT_TSA_ROOT_FILES = env.list("AUDIT_TSA_ROOT_FILES", default=[])
if AUDIT_TSA_URL and not AUDIT_TSA_ROOT_FILES:
    raise ImproperlyConfigured("AUDIT_TSA_URL needs AUDIT_TSA_ROOT_FILES: anchors are verified before they are stored")
# Witnesses asked to cosign each new checkpoint, comma-separated `<submission URL> <verifier key>`.
AUDIT_WITNESSES: list[tuple[str, str]] = []
for _witness in env.list("AUDIT_WITNESSES", default=[]):
    _url, _, _vkey = _witness.strip().partition(" ")
    try:
        cosigner_verifier_from_vkey(_vkey.strip())
    except ValueError as _error:
        raise ImproperlyConfigured(f"AUDIT_WITNESSES: {_witness!r} is not `<url> <verifier key>`: {_error}") from None
    if not _url.startswith(("https://", "http://")):
        raise ImproperlyConfigured(f"AUDIT_WITNESSES: {_url!r} is not an http(s) URL")
    AUDIT_WITNESSES.append((_url, _vkey.strip()))

# --- Logging ---------------------------------------------------------------------------------
# One JSON object per line on stderr, the same shape as gunicorn's own lines (logs.py).
LOGGING_CONFIG = "kubernaut_storage.observability.logs.logging_configure"
LOGGING = logging_config(level=env.str("LOG_LEVEL", default="INFO"))
