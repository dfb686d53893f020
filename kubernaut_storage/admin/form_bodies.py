"""Bodies that would be parsed as forms are judged by their headers before anything reads them.

Only the admin parses forms (Django's `request.POST`: the CSRF check, the login view), and no
endpoint takes files: the admin is read-only and its forms are urlencoded; the audit API takes
JSON only, read up to AUDIT_MAX_BODY_BYTES by its own parser. Left to Django, a multipart body
was read whole before the CSRF check could refuse it: with no upload handlers (nothing is
spooled to /tmp) Django's multipart parser reads in chunks of up to 2 GiB, so one 300 MB body
with a made-up CSRF cookie grew a worker by 590 MB. So, on every path, before the session, the
CSRF check or a view:

- a multipart body is 415, unread;
- a urlencoded form must declare its length (411 otherwise: a chunked form cannot be judged
  before it is read) and stay within DATA_UPLOAD_MAX_MEMORY_SIZE (413 otherwise).

Anything else is left to the view that reads it: the API's parser bounds what it reads, and
`request.POST` of any other content type is empty without a read.
"""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse

from kubernaut_storage.http.errors import problem_body
from kubernaut_storage.http.renderers import problem_json_response

FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"


def _refusal(request: HttpRequest, *, status: int, code: str, title: str, detail: str) -> HttpResponse:
    body = problem_body(status_code=status, code=code, detail=detail, instance=request.path)
    body["title"] = title
    return problem_json_response(body, status=status)


def form_body_refusal(request: HttpRequest) -> HttpResponse | None:
    """The answer to a body no view may parse, or None when it may go on (unread either way)."""
    declared = request.META.get("CONTENT_LENGTH") or ""
    chunked = "HTTP_TRANSFER_ENCODING" in request.META
    if declared in ("", "0") and not chunked:
        return None  # no body: a Content-Type alone costs nothing
    content_type = request.content_type or ""
    if content_type.startswith("multipart/"):
        return _refusal(
            request,
            status=415,
            code="multipart_not_accepted",
            title="Unsupported media type",
            detail="No endpoint takes files or multipart bodies.",
        )
    if content_type != FORM_CONTENT_TYPE:
        return None
    if not declared.isdigit():
        return _refusal(
            request,
            status=411,
            code="length_required",
            title="Length required",
            detail="A form must declare its Content-Length.",
        )
    limit: int = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    if int(declared) > limit:
        return _refusal(
            request,
            status=413,
            code="form_too_large",
            title="Request body too large",
            detail=f"A form may hold at most {limit} bytes.",
        )
    return None


class FormBodyGuardMiddleware:
    """Refuses multipart bodies and unbounded or oversized forms on every path, unread."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return form_body_refusal(request) or self.get_response(request)
