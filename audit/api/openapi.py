"""The audit API's part of the OpenAPI document: camelCase field names on the wire, the custom
fields' exact schemas, closed request bodies, and the write endpoints' headers and answers.

Imported by AuditConfig.ready (drf-spectacular finds extensions by their import); the hooks are
listed in SPECTACULAR_SETTINGS. What every endpoint shares (problem+json, X-Request-ID, the
bearer-token scheme) is the project's: kubernaut_storage/http/openapi.py.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from drf_spectacular.extensions import OpenApiSerializerFieldExtension
from drf_spectacular.utils import OpenApiParameter

from audit import limits
from audit.api.fields import JSONSchema
from audit.api.serializers import camel
from kubernaut_storage.http.openapi import PROBLEM_MEDIA_TYPE, PROBLEM_RESPONSE, REQUEST_ID_HEADER

WRITE_HEADERS = [
    OpenApiParameter(
        "Idempotency-Key",
        {"type": "string", "minLength": 1, "maxLength": limits.IDEMPOTENCY_KEY_LENGTH},
        OpenApiParameter.HEADER,
        required=False,
        description="Retrying with the same key and body answers the first 201 again (Idempotent-Replayed: "
        "true); the same key with another body is a 422. Kept at least 24 hours.",
    ),
    REQUEST_ID_HEADER,
]

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


#: Components of upstream Kubernaut's audit-event API (audit/api/events/): snake_case on the
#: wire, and open objects (unknown keys are stored, not refused), as upstream's document has them.
UPSTREAM_COMPONENT_PREFIXES = ("AuditEvent", "BatchAuditEvent")


def _ours(name: str) -> bool:
    return not name.startswith(UPSTREAM_COMPONENT_PREFIXES)


def camelize_component_fields(result: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    """drf-spectacular postprocessing hook: rename schema properties as they appear on the wire."""
    for name, component in result.get("components", {}).get("schemas", {}).items():
        if not _ours(name):
            continue
        if "properties" in component:
            component["properties"] = {camel(name): spec for name, spec in component["properties"].items()}
        if "required" in component:
            component["required"] = [camel(name) for name in component["required"]]
    return result


def close_request_bodies(result: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    """drf-spectacular postprocessing hook: request bodies refuse unknown keys, so say so."""
    for name, component in result.get("components", {}).get("schemas", {}).items():
        if name.endswith("Request") and "properties" in component and _ours(name):
            component["additionalProperties"] = False
    return result


def document_write_headers(result: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    """drf-spectacular postprocessing hook: the headers of a 201 (after the project's own hook)."""
    for url, path in result.get("paths", {}).items():
        for operation in path.values():
            created = operation.get("responses", {}).get("201")
            if created is None:
                continue
            headers = created.setdefault("headers", {})
            headers.update(_CREATED_HEADERS)
            if not url.endswith("/batch"):  # a batch's records carry their own ids
                headers.update(_CORRELATION_HEADER)
    return result


def bound_event_batches(result: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    """drf-spectacular postprocessing hook: an audit-event batch holds 1 to AUDIT_EVENTS_BATCH_MAX
    events (upstream's document states no bounds; its server enforces some)."""
    operation = result.get("paths", {}).get("/api/v1/audit/events/batch", {}).get("post")
    if operation is not None:
        schema = operation["requestBody"]["content"]["application/json"]["schema"]
        schema.update({"minItems": 1, "maxItems": settings.AUDIT_EVENTS_BATCH_MAX})
    return result
