"""The one request parser: strict JSON, size-limited before parsing."""

from __future__ import annotations

from typing import IO, Any

import orjson
from django.conf import settings
from django.http import UnreadablePostError
from rest_framework.exceptions import ParseError
from rest_framework.parsers import BaseParser

from kubernaut_storage.http.exceptions import PayloadTooLarge, RequestBodyIncomplete


class StrictJSONParser(BaseParser):
    """RFC 8259 JSON only: no NaN/Infinity, valid UTF-8, nesting bounded (orjson: 1024 levels).

    The body is read up to the limit plus one byte, so an oversize body costs at most the
    limit in memory whatever its declared or actual length. A body that stops arriving (the
    worker's read deadline, kubernaut_storage/serving/worker.py) is a 400, not a 500.
    """

    media_type = "application/json"

    def parse(self, stream: IO[bytes] | None, media_type: str | None = None, parser_context: Any = None) -> Any:
        limit: int = settings.AUDIT_MAX_BODY_BYTES
        try:
            raw = stream.read(limit + 1) if stream is not None else b""
        except UnreadablePostError as exc:  # the client's fault: not a 500
            raise RequestBodyIncomplete() from exc
        if len(raw) > limit:
            raise PayloadTooLarge(f"The request body exceeds {limit} bytes.")
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise ParseError(f"Malformed JSON: {exc}") from exc
