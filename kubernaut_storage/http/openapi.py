"""The OpenAPI document: camelCase field names on the wire, the custom fields' exact schemas,
closed request bodies, problem+json errors, the headers, and the bearer-token security scheme.

Imported by AuditConfig.ready: drf-spectacular finds extensions by their import.
"""

from __future__ import annotations

import re
from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension, OpenApiSerializerFieldExtension
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, inline_serializer
from rest_framework import serializers

from audit import limits
from audit.api.fields import JSONSchema
from audit.api.serializers import camel

PROBLEM_MEDIA_TYPE = "application/problem+json"

_ProblemErrorSerializer = inline_serializer(
    "ProblemFieldError",
    fields={
        "field": serializers.CharField(
            allow_blank=True, help_text="The field's path as sent, e.g. labels or stepStatuses[0].name."
        ),
        "code": serializers.CharField(),
        "message": serializers.CharField(),
    },
)
ProblemSerializer = inline_serializer(
    "Problem",
    fields={
        "type": serializers.URLField(),
        "title": serializers.CharField(),
        "status": serializers.IntegerField(min_value=400, max_value=599),
        "detail": serializers.CharField(allow_blank=True),
        "instance": serializers.CharField(allow_blank=True),
        "correlation_id": serializers.CharField(required=False),
        "errors": serializers.ListField(child=_ProblemErrorSerializer, required=False),
    },
)
PROBLEM_RESPONSE = OpenApiResponse(response=ProblemSerializer, description="RFC 9457 problem details.")

WRITE_HEADERS = [
    OpenApiParameter(
        "Idempotency-Key",
        {"type": "string", "minLength": 1, "maxLength": limits.IDEMPOTENCY_KEY_LENGTH},
        OpenApiParameter.HEADER,
        required=False,
        description="Retrying with the same key and body answers the first 201 again (Idempotent-Replayed: "
        "true); the same key with another body is a 422. Kept at least 24 hours.",
    ),
    OpenApiParameter(
        "X-Request-ID",
        {"type": "string"},
        OpenApiParameter.HEADER,
        required=False,
        description="Used as the request id when it is 1-128 of A-Z a-z 0-9 . _ : -; otherwise a new one is "
        "made. Either way it is echoed in the response.",
    ),
]

_RESPONSE_HEADERS: dict[str, JSONSchema] = {
    "X-Request-ID": {"description": "The request id (see the request header).", "schema": {"type": "string"}},
}
_CREATED_HEADERS: dict[str, JSONSchema] = {
    "Idempotent-Replayed": {
        "description": "`true` when this 201 replays the answer to an earlier request with the same Idempotency-Key.",
        "schema": {"type": "string", "enum": ["true"]},
    },
}
_CORRELATION_HEADER: dict[str, JSONSchema] = {
    "X-Correlation-ID": {
        "description": "The stored record's correlationId.",
        "required": True,
        "schema": {"type": "string"},
    },
}
_UNAVAILABLE_HEADERS: dict[str, JSONSchema] = {
    "Retry-After": {
        "description": "Seconds to wait before retrying.",
        "required": True,
        "schema": {"type": "string", "pattern": "^[0-9]+$"},
    },
}


def write_responses(created: Any) -> dict[Any, Any]:
    """The answers of an audit POST: `created` on 201, problem+json on every error."""
    return {
        201: created,
        **{(code, PROBLEM_MEDIA_TYPE): PROBLEM_RESPONSE for code in (400, 401, 403, 409, 413, 415, 422, 503)},
    }


class DocumentedFieldExtension(OpenApiSerializerFieldExtension):
    """The custom fields (audit/api/fields.py) state their own schema from their validation settings."""

    target_class = "audit.api.fields.DocumentedField"
    match_subclasses = True

    def map_serializer_field(self, auto_schema: Any, direction: Any) -> JSONSchema:
        schema: JSONSchema = self.target.openapi_schema()
        return schema


class BoundedListSerializerExtension(OpenApiSerializerFieldExtension):
    """`many=True` serializers: drf-spectacular leaves out their `max_length`/`min_length`."""

    target_class = "rest_framework.serializers.ListSerializer"
    match_subclasses = True

    def map_serializer_field(self, auto_schema: Any, direction: Any) -> JSONSchema:
        schema: JSONSchema = auto_schema._map_serializer_field(self.target, direction, bypass_extensions=True)
        if self.target.max_length is not None:
            schema["maxItems"] = self.target.max_length
        if self.target.min_length is not None:
            schema["minItems"] = self.target.min_length
        elif not self.target.allow_empty:
            schema["minItems"] = 1
        return schema


def camelize_component_fields(result: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    """drf-spectacular postprocessing hook: rename schema properties as they appear on the wire."""
    for component in result.get("components", {}).get("schemas", {}).values():
        if "properties" in component:
            component["properties"] = {camel(name): spec for name, spec in component["properties"].items()}
        if "required" in component:
            component["required"] = [camel(name) for name in component["required"]]
    return result


def close_request_bodies(result: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    """drf-spectacular postprocessing hook: request bodies refuse unknown keys, so say so."""
    for name, component in result.get("components", {}).get("schemas", {}).items():
        if name.endswith("Request") and "properties" in component:
            component["additionalProperties"] = False
    return result


_BLANK_ALTERNATIVE = {"type": "string", "maxLength": 0}


def merge_blank_alternatives(result: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    """drf-spectacular postprocessing hook: undo its `oneOf: [<pattern>, <empty string>]`.

    drf-spectacular offers the empty string beside a patterned field that allows blanks; our
    patterns already match it, and under `oneOf` a value matching both branches is invalid.
    """

    def visit(node: Any) -> None:
        if isinstance(node, dict):
            alternatives = node.get("oneOf")
            if (
                isinstance(alternatives, list)
                and len(alternatives) == 2
                and alternatives[1] == _BLANK_ALTERNATIVE
                and re.search(alternatives[0].get("pattern", "^$"), "")
                and not alternatives[0].get("minLength")
            ):
                node.update(node.pop("oneOf")[0])
            for value in node.values():
                visit(value)
        elif isinstance(node, list):
            for value in node:
                visit(value)

    visit(result.get("components", {}))
    return result


def document_response_headers(result: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    """drf-spectacular postprocessing hook: the headers every answer carries (it has no API for them)."""
    for url, path in result.get("paths", {}).items():
        for operation in path.values():
            for code, response in operation.get("responses", {}).items():
                headers = dict(_RESPONSE_HEADERS)
                if code == "201":
                    headers.update(_CREATED_HEADERS)
                    if not url.endswith("/batch"):  # a batch's records carry their own ids
                        headers.update(_CORRELATION_HEADER)
                if code == "503":
                    headers.update(_UNAVAILABLE_HEADERS)
                response["headers"] = headers
    return result


class KubernetesTokenScheme(OpenApiAuthenticationExtension):
    """Documents the audit endpoints' `Authorization: Bearer <ServiceAccount token>` (AUTH_MODE=tokenreview)."""

    target_class = "kubernaut_storage.auth.authentication.KubernetesTokenAuthentication"
    name = "kubernetesServiceAccountToken"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "A Kubernetes ServiceAccount token, verified with the TokenReview API; "
            "the account must be on the endpoint's allow-list (AUDIT_WRITERS).",
        }
