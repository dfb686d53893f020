"""A write that reaches the database after its window was sealed is refused by the trigger; the
caller is told to send it again (503 + Retry-After), never a 500: the request was slow, not
wrong, and sent again it gets a new recorded_at."""

from __future__ import annotations

import datetime as dt

import pytest

from audit.choices import AuditKind
from audit.models import AuditEvent, RemediationAudit
from testutils.events import event_body, post_events
from testutils.factories import VALID_BODIES, endpoint
from testutils.integrity import seal_row_ahead

pytestmark = pytest.mark.django_db


@pytest.fixture
def sealed_ahead() -> None:
    """A seal whose window ends a minute from now: what every write still in flight meets when
    the sealing job has sealed past it."""
    seal_row_ahead(now=dt.datetime.now(dt.UTC))


def test_a_typed_write_into_a_sealed_window_is_503_with_retry_after(api, sealed_ahead):
    answer = api.post(
        endpoint(AuditKind.REMEDIATION), data=VALID_BODIES[AuditKind.REMEDIATION](), content_type="application/json"
    )
    assert (answer.status_code, answer["Retry-After"]) == (503, "1")
    assert "send it again" in answer.json()["detail"]
    assert not RemediationAudit.objects.exists()


def test_an_events_batch_into_a_sealed_window_is_503_with_retry_after(api, sealed_ahead):
    answer = post_events(api, [event_body()])
    assert (answer.status_code, answer["Retry-After"]) == (503, "1")
    assert answer["Content-Type"] == "application/problem+json"
    assert not AuditEvent.objects.exists()
