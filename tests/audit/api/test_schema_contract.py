"""The OpenAPI document states every rule a generated client needs: types and formats, bounds on
every string, number, list and map, closed bodies, problem+json errors and the headers."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.renderers import OpenApiJsonRenderer

from audit import limits

REQUEST_BODIES = ["RemediationAuditRequest", "AIAnalysisAuditRequest", "WorkflowAuditRequest", "ExecutionAuditRequest"]
OPERATIONS = ["remediation", "aianalysis", "workflow", "execution", "batch"]


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    schema = SchemaGenerator().get_schema(request=None, public=True)
    loaded: dict[str, Any] = json.loads(OpenApiJsonRenderer().render(schema))
    return loaded


def _resolve(document: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        node = document["components"]["schemas"][node["$ref"].rsplit("/", 1)[1]]
    return node


def _leaves(document: dict[str, Any], node: dict[str, Any], path: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every schema under `node` with a scalar `type`, with its path."""
    node = _resolve(document, node)
    for keyword in ("anyOf", "oneOf"):
        for index, alternative in enumerate(node.get(keyword, [])):
            yield from _leaves(document, alternative, f"{path}|{index}")
    for name, child in node.get("properties", {}).items():
        yield from _leaves(document, child, f"{path}.{name}")
    for keyword in ("items", "additionalProperties", "propertyNames"):
        if isinstance(node.get(keyword), dict):
            yield from _leaves(document, node[keyword], f"{path}<{keyword}>")
    if node.get("type") in ("string", "integer", "number"):
        yield path, node


def test_every_string_number_list_and_map_of_a_body_is_bounded(document):
    for body in REQUEST_BODIES:
        for path, leaf in _leaves(document, {"$ref": f"#/components/schemas/{body}"}, body):
            if "enum" in leaf:
                continue
            if leaf["type"] == "string":
                assert "pattern" in leaf, path
                assert "maxLength" in leaf or leaf.get("format") == "date-time", path
            elif "signalContext<" not in path:  # free-form JSON: its numbers are data, not settings
                assert {"minimum", "maximum"} <= set(leaf), path


def test_timestamps_are_date_times(document):
    for body in REQUEST_BODIES:
        properties = document["components"]["schemas"][body]["properties"]
        for name in ("createdAt", "startedAt", "completedAt"):
            assert properties[name]["format"] == "date-time"
    step = document["components"]["schemas"]["StepStatusRequest"]["properties"]
    assert step["startedAt"]["format"] == step["completedAt"]["format"] == "date-time"


def test_maps_are_objects_with_typed_bounded_keys_and_values(document):
    labels = document["components"]["schemas"]["RemediationAuditRequest"]["properties"]["labels"]
    assert labels["type"] == "object"
    assert labels["maxProperties"] == limits.LABELS_MAX_ENTRIES
    assert labels["propertyNames"]["maxLength"] == limits.LABEL_KEY_LENGTH
    assert labels["additionalProperties"]["type"] == "string"
    assert labels["additionalProperties"]["maxLength"] == limits.LABEL_VALUE_LENGTH
    action_data = document["components"]["schemas"]["ExecutionAuditRequest"]["properties"]["actionData"]
    assert action_data["additionalProperties"]["maxLength"] == limits.ACTION_DATA_VALUE_LENGTH
    context = document["components"]["schemas"]["AIAnalysisAuditRequest"]["properties"]["signalContext"]
    assert context["type"] == "object"
    assert context["maxProperties"] == limits.SIGNAL_CONTEXT_MAX_ITEMS


def test_nested_steps_are_described_in_full(document):
    workflow = document["components"]["schemas"]["WorkflowAuditRequest"]
    steps = workflow["properties"]["stepStatuses"]
    assert steps["maxItems"] == limits.WORKFLOW_MAX_STEPS
    step = _resolve(document, steps["items"])
    assert set(step["properties"]) == {"name", "phase", "startedAt", "completedAt", "retryCount", "message"}
    assert step["additionalProperties"] is False
    assert "exceeds_step_count" in workflow["description"]


def test_bodies_refuse_unknown_keys(document):
    schemas = document["components"]["schemas"]
    for name in [*REQUEST_BODIES, "StepStatusRequest", "AuditBatchRequest", "AuditBatchRecordWorkflowRequest"]:
        assert schemas[name]["additionalProperties"] is False, name


def test_the_limit_that_caused_a_500_is_the_columns(document):
    properties = document["components"]["schemas"]["AIAnalysisAuditRequest"]["properties"]
    assert properties["recommendedAction"]["maxLength"] == limits.NAME_TEXT_LENGTH == 253


def test_every_error_is_problem_json_and_the_headers_are_documented(document):
    for kind in OPERATIONS:
        operation = document["paths"][f"/api/v1/audit/{kind}"]["post"]
        parameters = {parameter["name"]: parameter for parameter in operation["parameters"]}
        assert parameters["Idempotency-Key"]["schema"]["maxLength"] == limits.IDEMPOTENCY_KEY_LENGTH
        assert "X-Request-ID" in parameters
        for status, response in operation["responses"].items():
            assert "X-Request-ID" in response["headers"]
            if status.startswith("4") or status.startswith("5"):
                assert set(response["content"]) == {"application/problem+json"}, (kind, status)
                assert response["content"]["application/problem+json"]["schema"]["$ref"].endswith("/Problem")
        assert "Idempotent-Replayed" in operation["responses"]["201"]["headers"]
        assert operation["responses"]["503"]["headers"]["Retry-After"]["required"] is True
    problem = document["components"]["schemas"]["Problem"]
    assert {"type", "title", "status", "detail", "instance"} <= set(problem["required"])
