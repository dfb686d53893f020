"""A 400 lists at most 100 validation errors and counts them all; finding them costs little.

A 561 KB body with 45,000 unknown keys was answered with a 3.0 MB 400 listing each, after a
CPU-second of building error objects; a list field of 340,000 invalid items, 29 MB and 11 s.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from rest_framework import exceptions

from audit.models import AuditKind
from kubernaut_storage.http.errors import MAX_LISTED_ERRORS
from testutils.batches import batch_of, post_batch
from testutils.factories import VALID_BODIES

pytestmark = pytest.mark.django_db


def _post(api: Any, kind: AuditKind, body: Any) -> Any:
    return api.post(f"/api/v1/audit/{kind.value}", data=json.dumps(body), content_type="application/json")


@pytest.fixture
def error_objects(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the error objects DRF makes (each copy included) while the test runs."""
    made = [0]
    original = exceptions.ErrorDetail.__new__

    def counted(cls: type, *args: Any, **kwargs: Any) -> Any:
        made[0] += 1
        return original(cls, *args, **kwargs)

    monkeypatch.setattr(exceptions.ErrorDetail, "__new__", counted)
    return made


def test_45000_unknown_keys_list_100_count_all_and_build_few_error_objects(api, error_objects):
    body = VALID_BODIES[AuditKind.REMEDIATION]()
    body.update({f"k{index:05d}": 1 for index in range(45_000)})
    answer = _post(api, AuditKind.REMEDIATION, body)
    assert answer.status_code == 400
    problem = answer.json()
    assert problem["detail"] == "The request body has 45000 invalid field(s). The first 100 are listed."
    assert problem["errors"][0] == {"field": "k00000", "code": "unknown_field", "message": "Unknown field."}
    assert [error["field"] for error in problem["errors"]] == [f"k{index:05d}" for index in range(MAX_LISTED_ERRORS)]
    assert len(answer.content) < 20_000
    assert error_objects[0] < 100  # was 225,000: five copies of each of the 45,000


def test_unknown_keys_are_listed_after_the_fields_errors_as_before(api):
    body = VALID_BODIES[AuditKind.WORKFLOW]()
    body["bogus"] = 1
    body["namespace"] = "Not A Label"
    body["stepStatuses"] = [{"name": "a", "phase": "Pending", "extra": 1}]
    problem = _post(api, AuditKind.WORKFLOW, body).json()
    assert problem["detail"] == "The request body has 3 invalid field(s)."
    assert [(error["field"], error["code"]) for error in problem["errors"]] == [
        ("namespace", "pattern"),
        ("stepStatuses[0].extra", "unknown_field"),
        ("bogus", "unknown_field"),
    ]


def test_a_list_too_long_is_refused_before_its_items_are_validated(api, error_objects):
    body = VALID_BODIES[AuditKind.EXECUTION]()
    body["validationWarnings"] = [1] * 100_000
    problem = _post(api, AuditKind.EXECUTION, body).json()
    assert problem["errors"] == [
        {
            "field": "validationWarnings",
            "code": "max_length",
            "message": "Ensure this field has no more than 100 elements.",
        }
    ]
    assert error_objects[0] < 20


def test_a_batch_stops_validating_once_it_has_more_errors_than_one_answer_lists(api, error_objects):
    body = batch_of([AuditKind.WORKFLOW] * 400)
    for item in body["records"]:
        item["record"]["stepStatuses"] = [{} for _ in range(60)]  # 2 required fields each
    problem = post_batch(api, body).json()
    assert problem["errors"][0] == {
        "field": "",
        "code": "records_not_validated",
        "message": "Not validated: 399 records from 1 on; those before have more errors than one answer lists.",
    }
    assert problem["errors"][1]["field"] == "records[0].record.stepStatuses[0].name"
    assert len(problem["errors"]) == MAX_LISTED_ERRORS
    assert problem["detail"] == "The request body has 121 invalid field(s). The first 100 are listed."
    assert error_objects[0] < 5_000  # one record's worth, not 400
