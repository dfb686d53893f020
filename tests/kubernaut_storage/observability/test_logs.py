"""JSON log lines, and the one access line per request."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys

import pytest

from audit.models import AuditKind
from kubernaut_storage.observability.logs import JsonFormatter
from testutils.audit_rows import post_audit
from testutils.factories import VALID_BODIES


def _format(record: logging.LogRecord) -> dict:
    line = JsonFormatter().format(record)
    assert "\n" not in line
    return json.loads(line)


def test_a_record_is_one_json_object_with_its_extra_fields():
    record = logging.makeLogRecord(
        {"name": "x", "levelname": "INFO", "msg": "hello %s", "args": ("world",), "request_id": "r-1"}
    )
    entry = _format(record)
    assert entry["message"] == "hello world"
    assert entry["logger"] == "x"
    assert entry["request_id"] == "r-1"
    assert entry["time"].endswith("+00:00")


def test_a_traceback_stays_inside_its_record():
    try:
        raise ValueError("boom\nsecond line")
    except ValueError:
        record = logging.getLogger("x").makeRecord("x", logging.ERROR, __file__, 1, "failed", (), sys.exc_info())
    entry = _format(record)
    assert "ValueError: boom" in entry["exception"]


def test_bearer_credentials_are_masked_whoever_logs_them():
    record = logging.makeLogRecord(
        {"msg": "calling with Authorization: Bearer abc.def-ghi", "headers": {"authorization": "bearer xyz123=="}}
    )
    line = JsonFormatter().format(record)
    assert "abc.def-ghi" not in line
    assert "xyz123" not in line
    assert "Bearer [redacted]" in line


@pytest.mark.django_db
def test_a_write_logs_one_access_line_with_its_ids(api, caplog):
    caplog.set_level(logging.INFO)
    body = VALID_BODIES[AuditKind.WORKFLOW]()

    response = post_audit(api, AuditKind.WORKFLOW, body, **{"X-Request-ID": "req-from-caller-42"})

    assert response.status_code == 201
    assert response["X-Request-ID"] == "req-from-caller-42"
    [access] = [record for record in caplog.records if record.name == "kubernaut_storage.access"]
    entry = _format(access)
    assert entry["request_id"] == "req-from-caller-42"
    assert entry["correlation_id"] == body["correlationId"]
    assert entry["caller"] == "local:unauthenticated"
    assert (entry["method"], entry["endpoint"], entry["status"]) == ("POST", "/api/v1/audit/workflow", 201)
    assert entry["latency_ms"] > 0


@pytest.mark.django_db
def test_a_client_error_is_logged_once_not_again_by_django(api, caplog):
    caplog.set_level(logging.DEBUG)

    response = post_audit(api, AuditKind.EXECUTION, {"name": "only-a-name"})

    assert response.status_code == 400
    access = [record for record in caplog.records if record.name == "kubernaut_storage.access"]
    assert [record.status for record in access] == [400]  # type: ignore[attr-defined]
    assert not [record for record in caplog.records if record.name == "django.request"]


@pytest.mark.django_db
def test_unknown_paths_are_logged_under_one_endpoint_label(client, caplog):
    caplog.set_level(logging.INFO)
    client.get("/no/such/path/../../etc")
    [access] = [record for record in caplog.records if record.name == "kubernaut_storage.access"]
    assert access.endpoint == "unmatched"  # type: ignore[attr-defined]
    assert access.status == 404  # type: ignore[attr-defined]


def test_python_warnings_become_json_records_too():
    # A fresh interpreter: pytest captures warnings itself.
    code = "import django, warnings; django.setup(); warnings.warn('static dir missing')"
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "kubernaut_storage.settings.test", "DATABASE_URL": "postgres://x@/x"}
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    [line] = result.stderr.splitlines()
    entry = json.loads(line)
    assert entry["logger"] == "py.warnings"
    assert "static dir missing" in entry["message"]
