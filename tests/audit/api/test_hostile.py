"""Hostile bodies: every one is a 4xx problem+json, none is a 500, none leaves a row behind."""

from __future__ import annotations

import json

import pytest

from audit.models import AuditKind
from testutils.audit_rows import assert_problem, assert_rejected_without_writes, table_counts
from testutils.factories import VALID_BODIES, endpoint

pytestmark = pytest.mark.django_db

KIND = AuditKind.REMEDIATION
URL = endpoint(KIND)


def _raw_post(api, raw: bytes | str, content_type: str = "application/json"):
    return api.post(URL, data=raw, content_type=content_type)


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        (b"{not json", 400),
        # The test client sends no Content-Type with an empty body, so this is "not JSON".
        (b"", 415),
        (b"null", 400),
        (b"[]", 400),
        (b'"just a string"', 400),
        (b"42", 400),
        (b'{"name": NaN}', 400),
        (b'{"name": Infinity}', 400),
        (b"\xff\xfe{}", 400),
        (b'{"message": "\\ud800"}', 400),
        (b"[" * 100_000 + b"]" * 100_000, 400),
        (b'{"a":' * 50_000 + b"1" + b"}" * 50_000, 400),
        (b'{"tokensUsed": 123456789012345678901234567890}', 400),
        (json.dumps({f"k{i}": i for i in range(50_000)}).encode(), 400),
    ],
    ids=[
        "malformed",
        "empty",
        "null",
        "array",
        "string",
        "number",
        "nan",
        "infinity",
        "bad-utf8",
        "lone-surrogate",
        "deep-arrays",
        "deep-objects",
        "huge-int",
        "huge-map",
    ],
)
def test_hostile_json_is_a_4xx_problem(api, raw, status):
    before = table_counts()
    assert_problem(_raw_post(api, raw), status)
    assert table_counts() == before


def test_oversize_body_is_413(api, settings):
    settings.AUDIT_MAX_BODY_BYTES = 4096
    body = VALID_BODIES[KIND](message="x" * 5000)
    before = table_counts()
    problem = assert_problem(_raw_post(api, json.dumps(body)), 413)
    assert "4096" in problem["detail"]
    assert table_counts() == before


def test_default_limit_is_one_mebibyte(api):
    body = VALID_BODIES[KIND](reason="x" * (1024 * 1024))
    assert_problem(_raw_post(api, json.dumps(body)), 413)


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", "application/xml"])
def test_non_json_content_type_is_415(api, content_type):
    before = table_counts()
    assert_problem(_raw_post(api, json.dumps(VALID_BODIES[KIND]()), content_type), 415)
    assert table_counts() == before


def test_missing_content_type_is_415(api):
    response = api.generic("POST", URL, data=json.dumps(VALID_BODIES[KIND]()), content_type="")
    assert_problem(response, 415)


def test_json_with_charset_parameter_is_accepted(api):
    response = _raw_post(api, json.dumps(VALID_BODIES[KIND]()), "application/json; charset=utf-8")
    assert response.status_code == 201


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("name", "name\x00"),
        ("signalName", "Alert\nInjected"),
        ("message", "tab\tok but bell\x07"),
        ("message", "carriage\rreturn"),
        ("message", "c1 control \x85"),
        ("labels", {"team": "a\x00"}),
    ],
)
def test_control_characters_are_refused(api, field, value):
    problem = assert_rejected_without_writes(api, KIND, VALID_BODIES[KIND](**{field: value}))
    assert problem["errors"][0]["field"] == field


def test_get_is_405_problem(api):
    assert_problem(api.get(URL), 405)


def test_unknown_path_is_404_problem(api):
    assert_problem(api.get("/api/v1/audit/unknown"), 404)


def test_validation_problem_carries_the_correlation_id(api):
    body = VALID_BODIES[KIND](phase="Nope")
    problem = assert_rejected_without_writes(api, KIND, body)
    assert problem["correlationId"] == body["correlationId"]
    assert problem["instance"] == URL
    assert problem["type"].endswith("/validation-error")


def test_overlong_idempotency_key_is_400(api):
    response = api.post(
        URL,
        data=json.dumps(VALID_BODIES[KIND]()),
        content_type="application/json",
        headers={"Idempotency-Key": "k" * 256},
    )
    assert_problem(response, 400)
