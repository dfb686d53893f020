"""No body is read whole before it is judged: multipart is refused everywhere, forms by their length.

An anonymous form post is the cheapest way to make a worker buffer a body: without the limits
one 150 MB urlencoded `POST /admin/login/` grew a worker by ~580 MB, and with no upload handlers
Django read a 300 MB multipart body in one piece before the CSRF check refused it.
"""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from django.core.handlers.wsgi import WSGIHandler
from django.test import Client, RequestFactory

from audit.models import AuditKind
from testutils.factories import VALID_BODIES, endpoint

MADE_UP_CSRF_COOKIE = "csrftoken=" + "a" * 32
BOUNDARY = "form-limits-boundary"


class BodyStream(io.RawIOBase):
    """A request body of `size` bytes, made as it is read, counting what was read."""

    def __init__(self, head: bytes, size: int) -> None:
        self.head = head
        self.size = size
        self.taken = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        count = min(len(buffer), self.size - self.taken)
        start = self.taken
        chunk = (self.head[start : start + count] + b"x" * count)[:count]
        buffer[:count] = chunk
        self.taken += count
        return count


def _served(path: str, *, content_type: str, body: BodyStream, length: int | None, **extra: str) -> tuple[int, int]:
    """The whole middleware stack and view, as gunicorn calls them: (status, body bytes read)."""
    environ = RequestFactory()._base_environ(
        PATH_INFO=path,
        REQUEST_METHOD="POST",
        CONTENT_TYPE=content_type,
        HTTP_COOKIE=MADE_UP_CSRF_COOKIE,
        **extra,
    )
    environ["wsgi.input"] = body
    if length is None:
        environ.pop("CONTENT_LENGTH", None)
    else:
        environ["CONTENT_LENGTH"] = str(length)
    statuses: list[str] = []
    response = WSGIHandler()(environ, lambda status, headers, *_: statuses.append(status))
    response.close()
    return int(statuses[0].split()[0]), body.taken


def _multipart(size: int) -> BodyStream:
    head = (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="x.bin"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    return BodyStream(head, size)


@pytest.mark.parametrize("path", ["/admin/login/", endpoint(AuditKind.REMEDIATION), "/api/schema/"])
def test_a_multipart_body_is_refused_unread(db, path):
    size = 32 * 1024 * 1024
    status, read = _served(
        path, content_type=f"multipart/form-data; boundary={BOUNDARY}", body=_multipart(size), length=size
    )
    assert (status, read) == (415, 0)


def test_a_form_over_the_limit_is_refused_by_its_length_unread(db, settings):
    size = 100 * 1024  # a sign-in form is a few hundred bytes
    assert size > settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    status, read = _served(
        "/admin/login/",
        content_type="application/x-www-form-urlencoded",
        body=BodyStream(b"username=a&password=", size),
        length=size,
    )
    assert (status, read) == (413, 0)


def test_a_form_with_no_length_is_refused_unread(db):
    status, read = _served(
        "/admin/login/",
        content_type="application/x-www-form-urlencoded",
        body=BodyStream(b"username=a&password=", 1024),
        length=None,
        HTTP_TRANSFER_ENCODING="chunked",
    )
    assert (status, read) == (411, 0)


def test_a_content_type_without_a_body_is_not_refused(db):
    page = Client().get("/admin/login/", CONTENT_TYPE=f"multipart/form-data; boundary={BOUNDARY}")
    assert page.status_code == 200


def test_a_sign_in_form_is_still_read(db):
    status, read = _served(
        "/admin/login/",
        content_type="application/x-www-form-urlencoded",
        body=BodyStream(b"username=a&password=b", 21),
        length=21,
    )
    assert (status, read) == (403, 21)  # read, then refused by the CSRF check: the cookie was made up


def test_an_oversized_login_form_is_refused(db):
    answer = Client().post(
        "/admin/login/",
        data=b"username=a&password=" + b"x" * (3 * 1024 * 1024),
        content_type="application/x-www-form-urlencoded",
    )
    assert answer.status_code == 413
    assert answer["Content-Type"] == "application/problem+json"


def test_the_audit_api_takes_bodies_above_the_form_limit_up_to_its_own(api, settings, db):
    settings.AUDIT_MAX_BODY_BYTES = 4 * 1024 * 1024
    body = VALID_BODIES[AuditKind.REMEDIATION]()
    padded = json.dumps(body) + " " * (3 * 1024 * 1024)  # JSON allows trailing whitespace
    answer = api.post(endpoint(AuditKind.REMEDIATION), data=padded, content_type="application/json")
    assert answer.status_code == 201, answer.content
