"""The read-only admin of upstream Kubernaut's audit events: list, filters and search answered
by indexes, an event's page with its payload as received (escaped), and events on the
correlation timeline beside the typed records."""

from __future__ import annotations

import pytest
from django.urls import reverse

from audit.models import AuditEvent
from tests.audit.admin.test_pages import _assert_index_backed, _queries
from testutils.admin_rows import remediation_chain
from testutils.events import event_batch, event_body_full, post_events

pytestmark = pytest.mark.django_db

EVENTS = reverse("admin:audit_auditevent_changelist")


def _stored(api, events: list[dict]) -> list[AuditEvent]:
    response = post_events(api, events)
    assert response.status_code == 201, response.content
    ids = response.json()["event_ids"]
    rows = {str(row.event_id): row for row in AuditEvent.objects.filter(event_id__in=ids)}
    return [rows[event_id] for event_id in ids]


@pytest.mark.parametrize(
    "query",
    ["", "?event_category=aiagent", "?event_outcome=failure", "?event_type=aiagent.llm.request", "?q=rr-1"],
)
def test_every_list_filter_and_search_is_answered_by_an_index(auditor_client, api, query):
    _stored(api, event_batch(["gateway.signal.received", "aiagent.llm.request"]))
    _, queries = _queries(auditor_client, EVENTS + query)
    rows_query = queries[-1]
    assert 'FROM "audit_events"' in rows_query
    _assert_index_backed(rows_query, in_index_order=True)


def test_filters_and_search_narrow_the_list(auditor_client, api):
    gateway, llm = _stored(
        api,
        [
            event_body_full("gateway.signal.received", correlation_id="rr-admin-1"),
            event_body_full("aiagent.llm.request", correlation_id="rr-admin-2", event_outcome="failure"),
        ],
    )

    def listed(query: str) -> set[int]:
        response = auditor_client.get(EVENTS + query)
        assert response.status_code == 200
        return {row.id for row in response.context["cl"].result_list}

    assert {gateway.id, llm.id} <= listed("")
    assert listed("?event_outcome=failure") & {gateway.id, llm.id} == {llm.id}
    assert listed("?event_category=gateway") & {gateway.id, llm.id} == {gateway.id}
    assert listed("?event_type=aiagent.llm.request") & {gateway.id, llm.id} == {llm.id}
    assert listed("?q=rr-admin-1") == {gateway.id}
    assert auditor_client.get(EVENTS + "?event_data__icontains=x").status_code == 400  # no unindexed lookups


def test_an_events_page_shows_its_payload_escaped_and_cannot_change_it(auditor_client, api):
    body = event_body_full("gateway.signal.received", rollout="<b>canary</b>")
    body["event_data"]["signal_name"] = "<script>alert(1)</script>"
    (event,) = _stored(api, [body])

    response = auditor_client.get(reverse("admin:audit_auditevent_change", args=[event.id]))

    html = response.content.decode()
    assert response.status_code == 200
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<script>alert(1)" not in html
    assert "&lt;b&gt;canary&lt;/b&gt;" in html
    assert reverse("audit-timeline", args=[body["correlation_id"]]) in html
    assert 'name="_save"' not in html
    change = auditor_client.post(
        reverse("admin:audit_auditevent_change", args=[event.id]),
        data="event_outcome=failure",
        content_type="application/x-www-form-urlencoded",
    )
    assert change.status_code == 403
    assert auditor_client.get(reverse("admin:audit_auditevent_add")).status_code == 403


def test_the_timeline_shows_events_beside_the_typed_records(auditor_client, api):
    chain = remediation_chain()
    events = _stored(
        api,
        event_batch(
            ["gateway.signal.received", "orchestrator.lifecycle.started"], correlation_id=chain["correlation_id"]
        ),
    )
    url = reverse("audit-timeline", args=[chain["correlation_id"]])

    response = auditor_client.get(url)

    entries = response.context["timeline"].entries
    kinds = [entry.kind.value for entry in entries]
    assert kinds == ["remediation", "aianalysis", "workflow", "execution", "execution", "event", "event"]
    assert [entry.name for entry in entries[-2:]] == ["gateway.signal.received", "orchestrator.lifecycle.started"]
    assert [entry.id for entry in entries[-2:]] == [event.id for event in events]  # insertion order
    html = response.content.decode()
    for event in events:
        assert reverse("admin:audit_auditevent_change", args=[event.id]) in html
    _, queries = _queries(auditor_client, url)
    _assert_index_backed(queries[-1], in_index_order=False)
