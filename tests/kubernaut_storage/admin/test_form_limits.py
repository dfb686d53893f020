"""Django's form limits hold for every form (the admin's login included), not for the audit API.

An anonymous form post is the cheapest way to make a worker buffer a body: without the limits
one 150 MB `POST /admin/login/` grew a worker by ~580 MB.
"""

from __future__ import annotations

import json

from django.test import Client, RequestFactory

from audit.models import AuditKind
from testutils.factories import VALID_BODIES, endpoint

FORM_BYTES = 3 * 1024 * 1024  # over Django's default 2.5 MB


def test_an_oversized_login_form_is_refused_400(db):
    answer = Client().post(
        "/admin/login/",
        data=b"username=a&password=" + b"x" * FORM_BYTES,
        content_type="application/x-www-form-urlencoded",
    )
    assert answer.status_code == 400


def test_a_file_in_a_form_is_discarded_not_kept(tmp_path):
    upload = tmp_path / "upload.bin"
    upload.write_bytes(b"x" * FORM_BYTES)
    with upload.open("rb") as file:
        request = RequestFactory().post("/admin/login/", data={"username": "a", "file": file})
    assert (request.POST["username"], dict(request.FILES)) == ("a", {})


def test_the_audit_api_takes_bodies_above_the_form_limit_up_to_its_own(api, settings, db):
    settings.AUDIT_MAX_BODY_BYTES = 4 * 1024 * 1024
    body = VALID_BODIES[AuditKind.REMEDIATION]()
    padded = json.dumps(body) + " " * FORM_BYTES  # JSON allows trailing whitespace
    answer = api.post(endpoint(AuditKind.REMEDIATION), data=padded, content_type="application/json")
    assert answer.status_code == 201, answer.content
