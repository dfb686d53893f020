"""The audit-event endpoints' parser: JSON with every number kept as sent, and the body's hash."""

from __future__ import annotations

import hashlib
from typing import IO, Any

from django.conf import settings
from django.http import UnreadablePostError
from rest_framework.exceptions import ParseError
from rest_framework.parsers import BaseParser

from audit.api.events.encoding import EventJSONError, event_json_loads
from kubernaut_storage.http.exceptions import PayloadTooLarge, RequestBodyIncomplete

#: The attribute of the HttpRequest holding the SHA-256 (hex) of the body as received: a
#: client re-posting the same bytes is recognised by it.
BODY_SHA256_ATTRIBUTE = "audit_events_body_sha256"


class EventJSONParser(BaseParser):
    """Strict JSON like the service's own parser (kubernaut_storage/http/parsers.py), read up to
    AUDIT_EVENTS_MAX_BODY_BYTES plus one byte, numbers exact (audit/api/events/encoding.py)."""

    media_type = "application/json"

    def parse(self, stream: IO[bytes] | None, media_type: str | None = None, parser_context: Any = None) -> Any:
        limit: int = settings.AUDIT_EVENTS_MAX_BODY_BYTES
        try:
            raw = stream.read(limit + 1) if stream is not None else b""
        except UnreadablePostError as exc:
            raise RequestBodyIncomplete() from exc
        if len(raw) > limit:
            raise PayloadTooLarge(f"The request body exceeds {limit} bytes.")
        try:
            data = event_json_loads(raw)
        except EventJSONError as exc:
            raise ParseError(str(exc)) from exc
        request = (parser_context or {}).get("request")
        if request is not None:
            setattr(request._request, BODY_SHA256_ATTRIBUTE, hashlib.sha256(raw).hexdigest())
        return data
