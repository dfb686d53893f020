"""The OpenAPI document: what every endpoint shares, and serving it built once.

Shared by every endpoint: problem+json errors, the X-Request-ID and Retry-After headers, the
bearer-token security scheme, bounded lists. The apps add their own parts (audit/api/openapi.py)
through drf-spectacular's extensions and the hooks in SPECTACULAR_SETTINGS.

`/api/schema/` serves a document generated once per process and each format rendered once:
drf-spectacular generates it on every request, ~50 ms of CPU, and concurrent generations on a
fresh worker raced (a flood answered 500s and raised the writes' p50 from 6 to 107 ms).
gunicorn's master prepares it before forking the workers (kubernaut_storage/gunicorn_config.py).
"""

from __future__ import annotations

import re
import threading
from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension, OpenApiSerializerFieldExtension
from drf_spectacular.settings import spectacular_settings
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, inline_serializer
from drf_spectacular.views import SpectacularAPIView
from rest_framework import serializers
from rest_framework.renderers import BaseRenderer
from rest_framework.request import Request
from rest_framework.response import Response

JSONSchema = dict[str, Any]

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

REQUEST_ID_HEADER = OpenApiParameter(
    "X-Request-ID",
    {"type": "string"},
    OpenApiParameter.HEADER,
    required=False,
    description="Used as the request id when it is 1-128 of A-Z a-z 0-9 . _ : -; otherwise a new one is "
    "made. Either way it is echoed in the response.",
)

_RESPONSE_HEADERS: dict[str, JSONSchema] = {
    "X-Request-ID": {"description": "The request id (see the request header).", "schema": {"type": "string"}},
}
_UNAVAILABLE_HEADERS: dict[str, JSONSchema] = {
    "Retry-After": {
        "description": "Seconds to wait before retrying.",
        "required": True,
        "schema": {"type": "string", "pattern": "^[0-9]+$"},
    },
}


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
    for path in result.get("paths", {}).values():
        for operation in path.values():
            for code, response in operation.get("responses", {}).items():
                headers = dict(_RESPONSE_HEADERS)
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


_document: dict[str, Any] | None = None
_document_lock = threading.Lock()
# Renderings of the document, by renderer and accepted media type (an `indent` parameter
# changes the JSON); a client inventing media type parameters gets a rendering, not a slot.
_renderings: dict[tuple[type[BaseRenderer], str | None], bytes] = {}
_MAX_RENDERINGS = 16


def openapi_document() -> dict[str, Any]:
    """The document, generated on first use in this process; concurrent first uses wait for it."""
    global _document
    with _document_lock:
        if _document is None:
            view = OpenAPIDocumentView
            generator = view.generator_class(urlconf=view.urlconf, patterns=view.patterns)
            _document = generator.get_schema(request=None, public=view.serve_public)
        return _document


def openapi_document_prepare() -> None:
    """Generate the document and render each format: in gunicorn's master, before it forks."""
    document = openapi_document()
    for renderer_class in OpenAPIDocumentView.renderer_classes:
        renderer_class().render(document, renderer_class.media_type)


def _rendered_once(renderer_class: type[BaseRenderer]) -> type[BaseRenderer]:
    class RenderedOnce(renderer_class):  # type: ignore[valid-type, misc]
        def render(self, data: Any, accepted_media_type: str | None = None, renderer_context: Any = None) -> Any:
            if data is not _document:  # another version's document: rare, rendered each time
                return super().render(data, accepted_media_type, renderer_context)
            key = (renderer_class, accepted_media_type)
            rendering = _renderings.get(key)
            if rendering is None:
                rendering = super().render(data, accepted_media_type, renderer_context)
                if len(_renderings) < _MAX_RENDERINGS:
                    _renderings[key] = rendering
            return rendering

    RenderedOnce.__name__ = RenderedOnce.__qualname__ = renderer_class.__name__
    return RenderedOnce


class OpenAPIDocumentView(SpectacularAPIView):
    """`/api/schema/`: drf-spectacular's view, answering from the document generated once."""

    renderer_classes = [_rendered_once(renderer) for renderer in SpectacularAPIView.renderer_classes]

    def _get_schema_response(self, request: Request) -> Response:
        version = self.api_version or request.version or self._get_version_parameter(request)
        document = openapi_document()
        if version:
            # `?version=`: with no versioned view only the info block differs, as
            # drf_spectacular.plumbing.build_root_object words it.
            configured = spectacular_settings.VERSION
            label = f"{configured} ({version})" if configured else version
            document = {**document, "info": {**document["info"], "version": label}}
        return Response(
            data=document,
            headers={"Content-Disposition": f'inline; filename="{self._get_filename(request, version)}"'},
        )
