"""The published OpenAPI document, fuzzed by Schemathesis against a live gunicorn on the test database.

Every operation gets the examples, coverage and fuzzing phases in both generation modes:
valid bodies (positive) must be stored, invalid ones (negative) refused with a 4xx, nothing may
answer 5xx, and every answer must conform to the document (status, media type, headers, body).

The one allowance: a body the schema calls valid may be refused 400 by a rule JSON Schema cannot
state (`CROSS_FIELD_CODES`, and for the audit events `EVENT_CROSS_FIELD_CODES`, which the
document describes in words), or 422 when the generator
happens to reuse an Idempotency-Key with another body. `positive_data_acceptance` is replaced by
`stored_unless_a_cross_field_rule`, which allows exactly these.

CONTRACT_FUZZ_EXAMPLES sets the fuzzing examples per operation (200 by default; see the README
for the longer run).
"""

from __future__ import annotations

import itertools
import json
import os
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from django.db import connection
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.renderers import OpenApiJsonRenderer
from hypothesis import HealthCheck, settings
from schemathesis.checks import CheckContext
from schemathesis.specs.openapi.checks import positive_data_acceptance

from audit.api.events.serializers import EVENT_CROSS_FIELD_CODES
from audit.api.serializers import CROSS_FIELD_CODES
from testutils.gunicorn import database_url, running_gunicorn

FUZZ_EXAMPLES = int(os.environ.get("CONTRACT_FUZZ_EXAMPLES", "200"))
#: The coverage phase (every boundary and every single-keyword violation, deterministically) sends
#: ~1,000 requests for the larger bodies: part of the long run, too slow for every CI run.
COVERAGE_PHASE = os.environ.get("CONTRACT_COVERAGE_PHASE", "0") == "1"
#: What each operation was sent and answered: (operation, mode) → status → count.
SENT: Counter[tuple[str, str, int]] = Counter()
KEY_SERIAL = itertools.count()


@pytest.fixture(scope="module")
def contract_server(django_db_setup: Any, django_db_blocker: Any) -> Iterator[str]:
    with django_db_blocker.unblock():
        url = database_url(connection.settings_dict)
    with running_gunicorn(DATABASE_URL=url, GUNICORN_WORKERS="2", GUNICORN_THREADS="4") as server:
        served = server.request("GET", "/api/schema/?format=json")
        assert served.status == 200
        assert served.json() == DOCUMENT  # the document fuzzed is the one the live service publishes
        yield f"http://127.0.0.1:{server.port}"
    _examples_per_operation_check()


def _published_document() -> dict[str, Any]:
    """The document /api/schema/ serves, built at import: Schemathesis parametrizes at collection."""
    document = SchemaGenerator().get_schema(request=None, public=True)
    loaded: dict[str, Any] = json.loads(OpenApiJsonRenderer().render(document))
    return loaded


DOCUMENT = _published_document()
schema = schemathesis.openapi.from_dict(
    DOCUMENT,
    config=schemathesis.Config.from_dict(
        {
            "generation": {"mode": "all", "max-examples": FUZZ_EXAMPLES, "database": "none"},
            "phases": {
                "examples": {"enabled": True},
                "coverage": {"enabled": COVERAGE_PHASE},
                "fuzzing": {"enabled": True},
            },
            # A batch above its maxItems is refused 413 (too large), as the document says.
            "checks": {"negative_data_rejection": {"expected-statuses": [400, 413, 415, 422]}},
        }
    ),
)


@schemathesis.check
def stored_unless_a_cross_field_rule(ctx: CheckContext, response: schemathesis.Response, case: Any) -> bool | None:
    """A schema-valid body is stored (201), or refused only by a documented cross-field rule."""
    if case.meta is None or case.meta.generation.mode != schemathesis.GenerationMode.POSITIVE:
        return None
    if response.status_code == 201:
        return True
    body = response.json() if response.status_code in (400, 422) else {}
    if response.status_code == 422 and body.get("type", "").endswith("/idempotency-key-reused"):
        return True
    codes = {error["code"] for error in body.get("errors", [])}
    if response.status_code == 400 and codes and codes <= CROSS_FIELD_CODES | EVENT_CROSS_FIELD_CODES:
        return True
    raise AssertionError(f"A body the schema calls valid was answered {response.status_code}: {response.text}")


@pytest.mark.django_db(transaction=True)
@schema.parametrize()
@settings(deadline=None, suppress_health_check=list(HealthCheck), print_blob=True)
def test_the_service_keeps_its_published_contract(case: Any, contract_server: str) -> None:
    positive = case.meta is not None and case.meta.generation.mode == schemathesis.GenerationMode.POSITIVE
    if positive and "Idempotency-Key" in (case.headers or {}):
        # Generated keys repeat ("0", "00", ...), and a reused key with another body is a 422 that
        # would stop the body from reaching the database: keep them valid, make them unique.
        case.headers["Idempotency-Key"] = f"{next(KEY_SERIAL)}-{case.headers['Idempotency-Key']}"[:255]
    response = case.call_and_validate(
        base_url=contract_server,
        excluded_checks=[positive_data_acceptance],
        additional_checks=[stored_unless_a_cross_field_rule],
    )
    mode = case.meta.generation.mode.value if case.meta else "explicit"
    SENT[(f"{case.method} {case.path}", mode, response.status_code)] += 1


def _examples_per_operation_check() -> None:
    by_operation: Counter[str] = Counter()
    for (operation, mode, status), count in sorted(SENT.items()):
        if operation.startswith("POST "):  # the others are Schemathesis trying undocumented methods
            by_operation[operation] += count
        print(f"schemathesis: {operation} {mode} {status}: {count}")
    assert by_operation, "no example was sent"
    assert min(by_operation.values()) >= FUZZ_EXAMPLES, by_operation
