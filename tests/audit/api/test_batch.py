"""POST /api/v1/audit/batch: a mixed batch stored exactly, all or nothing, limits, idempotency."""

from __future__ import annotations

import datetime as dt
import hashlib
import threading

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from audit.models import AUDIT_MODELS, AuditKind
from audit.write.records_in_flight import records_in_flight
from audit.write.statements import fingerprint_json
from embeddings.models import IncidentEmbedding
from testutils.audit_rows import assert_problem, error_fields, post_audit, table_counts
from testutils.batches import MIXED_KINDS, batch_of, post_batch
from testutils.embedding_settings import LOCAL_MODEL, text_for
from testutils.factories import VALID_BODIES
from testutils.metrics import MetricDelta

pytestmark = pytest.mark.django_db

WRITES = "kubernaut_audit_writes_total"


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def test_a_mixed_batch_stores_every_record_with_its_embedding_and_answers_in_order(api):
    body = batch_of(MIXED_KINDS)
    before = table_counts()

    response = post_batch(api, body)

    assert response.status_code == 201, response.content
    results = response.json()["results"]
    assert len(results) == len(MIXED_KINDS)
    after = table_counts()
    for kind in AuditKind:
        assert after[kind.value] - before[kind.value] == MIXED_KINDS.count(kind)
    assert after["embeddings"] - before["embeddings"] == len(MIXED_KINDS)
    assert (after["backlog"], after["idempotency_keys"]) == (before["backlog"], before["idempotency_keys"])

    recorded_at = {result["recordedAt"] for result in results}
    assert len(recorded_at) == 1  # one receive time for the whole batch
    for item, result in zip(body["records"], results, strict=True):
        kind, record_body = AuditKind(item["kind"]), item["record"]
        assert set(result) == {"id", "embeddingId", "embeddingStatus", "correlationId", "recordedAt"}
        assert (result["embeddingStatus"], result["correlationId"]) == ("stored", record_body["correlationId"])
        row = AUDIT_MODELS[kind].objects.get(id=result["id"])
        assert row.payload == record_body
        assert row.correlation_id == record_body["correlationId"]
        assert (row.actor, row.request_id) == ("local:unauthenticated", response["X-Request-ID"])
        assert dt.datetime.fromisoformat(result["recordedAt"]) == row.recorded_at
        content = {"payload": record_body, "recordedAt": row.recorded_at.isoformat(), "actor": row.actor}
        assert row.content_sha256 == hashlib.sha256(fingerprint_json(content)).hexdigest()
        # The embedding row is this record's: its kind, id, time and the hash of its own text.
        embedding = IncidentEmbedding.objects.get(id=result["embeddingId"])
        assert (embedding.audit_type, embedding.audit_id) == (kind.value, row.id)
        assert embedding.audit_recorded_at == row.recorded_at
        assert embedding.input_sha256 == _sha256(text_for(kind, record_body))
        assert (embedding.model, embedding.dimensions, embedding.namespace) == (LOCAL_MODEL, 384, row.namespace)


def test_type_specific_columns_and_defaults_are_filled_as_by_the_single_endpoints(api):
    body = batch_of([AuditKind.AI_ANALYSIS, AuditKind.EXECUTION])
    del body["records"][1]["record"]["isRolledBack"]
    del body["records"][1]["record"]["stepName"]

    results = post_batch(api, body).json()["results"]

    analysis = AUDIT_MODELS[AuditKind.AI_ANALYSIS].objects.get(id=results[0]["id"])
    sent = body["records"][0]["record"]
    assert (analysis.root_cause, analysis.requires_approval) == (sent["rootCause"], False)
    assert analysis.confidence == pytest.approx(sent["confidence"])
    assert IncidentEmbedding.objects.get(id=results[0]["embeddingId"]).root_cause == sent["rootCause"]
    execution = AUDIT_MODELS[AuditKind.EXECUTION].objects.get(id=results[1]["id"])
    assert (execution.is_rolled_back, execution.step_name) == (None, "")


def test_rows_go_in_as_one_statement_per_kind_not_per_record(api):
    kinds = [AuditKind.REMEDIATION] * 5 + [AuditKind.EXECUTION] * 4
    with CaptureQueriesContext(connection) as queries:
        response = post_batch(api, batch_of(kinds))
    assert response.status_code == 201, response.content
    inserts = [query["sql"] for query in queries.captured_queries if "INSERT" in query["sql"]]
    assert len(inserts) == 2
    assert all(sql.startswith("WITH batch_rows AS MATERIALIZED") for sql in inserts)


def test_the_same_text_twice_in_a_batch_is_one_vector_for_both(api):
    body = batch_of([AuditKind.REMEDIATION, AuditKind.REMEDIATION])
    results = post_batch(api, body).json()["results"]
    first, second = (IncidentEmbedding.objects.get(id=result["embeddingId"]) for result in results)
    assert first.input_sha256 == second.input_sha256
    assert list(first.embedding) == list(second.embedding)


def test_every_bad_field_of_every_record_is_reported_at_once_and_nothing_is_stored(api):
    body = batch_of([AuditKind.REMEDIATION] * 3 + [AuditKind.WORKFLOW, AuditKind.EXECUTION])
    del body["records"][0]["record"]["signalName"]
    body["records"][2]["record"]["namespace"] = "Bad_NS"
    body["records"][2]["record"]["unexpectedField"] = 1
    body["records"][3]["record"]["stepStatuses"][0]["phase"] = "Nope"
    body["records"][4]["kind"] = "deployment"
    body["records"].append("not an object")
    body["records"].append({"kind": "execution"})
    before = table_counts()

    problem = assert_problem(post_batch(api, body), 400)

    assert error_fields(problem) == {
        "records[0].record.signalName",
        "records[2].record.namespace",
        "records[2].record.unexpectedField",
        "records[3].record.stepStatuses[0].phase",
        "records[4].kind",
        "records[5]",
        "records[6].record",
    }
    assert problem["type"].endswith("/validation-error")
    assert table_counts() == before


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ([], ""),
        ({}, "records"),
        ({"records": {"kind": "remediation"}}, "records"),
        ({"records": []}, "records"),
        ({"records": [], "extra": 1}, "extra"),
    ],
)
def test_a_body_without_a_list_of_records_is_400(api, body, field):
    problem = assert_problem(post_batch(api, body), 400)
    assert field in error_fields(problem)


def test_more_records_than_the_limit_is_413_before_any_is_validated(api, settings):
    settings.AUDIT_BATCH_MAX_RECORDS = 3
    body = batch_of([AuditKind.REMEDIATION] * 4)
    body["records"][3]["record"] = "not even a record"
    before = table_counts()

    problem = assert_problem(post_batch(api, body), 413)

    assert problem["type"].endswith("/batch-too-large")
    assert "4 records" in problem["detail"]
    assert "at most 3" in problem["detail"]
    assert table_counts() == before
    assert post_batch(api, batch_of([AuditKind.REMEDIATION] * 3)).status_code == 201


def test_a_batch_of_the_default_limit_fits_the_default_body_size_and_is_stored(api, settings):
    assert (settings.AUDIT_BATCH_MAX_RECORDS, settings.AUDIT_MAX_BODY_BYTES) == (500, 1024 * 1024)
    body = batch_of(MIXED_KINDS * 71 + MIXED_KINDS[:3])
    before = table_counts()

    response = post_batch(api, body)

    assert response.status_code == 201, response.content[:500]
    assert len(response.json()["results"]) == 500
    after = table_counts()
    assert sum(after[kind.value] - before[kind.value] for kind in AuditKind) == 500
    assert after["embeddings"] - before["embeddings"] == 500


def test_a_body_over_the_size_limit_is_413(api, settings):
    settings.AUDIT_MAX_BODY_BYTES = 4096
    before = table_counts()
    problem = assert_problem(post_batch(api, batch_of(MIXED_KINDS)), 413)
    assert problem["type"].endswith("/payload-too-large")
    assert table_counts() == before


def test_a_body_that_is_not_json_is_415(api):
    response = api.post("/api/v1/audit/batch", data="records=1", content_type="application/x-www-form-urlencoded")
    assert_problem(response, 415)


def test_same_key_same_batch_replays_the_first_201_and_writes_nothing(api):
    body = batch_of(MIXED_KINDS)
    first = post_batch(api, body, **{"Idempotency-Key": "batch-1"})
    assert first.status_code == 201
    assert "Idempotent-Replayed" not in first
    after_first = table_counts()

    again = post_batch(api, body, **{"Idempotency-Key": "batch-1"})

    assert again.status_code == 201
    assert again["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    assert table_counts() == after_first


def test_same_key_different_batch_is_422(api):
    body = batch_of([AuditKind.REMEDIATION, AuditKind.WORKFLOW])
    assert post_batch(api, body, **{"Idempotency-Key": "batch-2"}).status_code == 201
    before = table_counts()
    body["records"].pop()
    assert_problem(post_batch(api, body, **{"Idempotency-Key": "batch-2"}), 422)
    assert table_counts() == before


def test_a_batch_key_and_a_single_endpoint_key_are_apart(api):
    assert post_audit(api, AuditKind.REMEDIATION, VALID_BODIES[AuditKind.REMEDIATION](), **{"Idempotency-Key": "k"})
    response = post_batch(api, batch_of([AuditKind.REMEDIATION]), **{"Idempotency-Key": "k"})
    assert response.status_code == 201
    assert "Idempotent-Replayed" not in response


def test_stored_records_are_counted_by_kind_and_a_rejected_batch_once(api):
    metrics = MetricDelta(
        *((WRITES, {"kind": kind.value, "outcome": "created"}) for kind in AuditKind),
        (WRITES, {"kind": "batch", "outcome": "invalid"}),
    )
    assert post_batch(api, batch_of(MIXED_KINDS)).status_code == 201
    assert post_batch(api, {"records": []}).status_code == 400
    for kind in AuditKind:
        assert metrics.of(WRITES, kind=kind.value, outcome="created") == MIXED_KINDS.count(kind)
    assert metrics.of(WRITES, kind="batch", outcome="invalid") == 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_batches_with_one_key_store_exactly_one_batch():
    body = batch_of(MIXED_KINDS)
    correlation_ids = [item["record"]["correlationId"] for item in body["records"]]
    barrier = threading.Barrier(4)
    responses = []

    def send():
        barrier.wait()
        try:
            responses.append(post_batch(Client(), body, **{"Idempotency-Key": "race"}))
        finally:
            connection.close()

    threads = [threading.Thread(target=send) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    stored = sum(AUDIT_MODELS[kind].objects.filter(correlation_id__in=correlation_ids).count() for kind in AuditKind)
    assert stored == len(MIXED_KINDS)
    assert IncidentEmbedding.objects.count() == len(MIXED_KINDS)
    assert len(responses) == 4
    assert {response.status_code for response in responses} <= {201, 409}
    created = [response.json() for response in responses if response.status_code == 201]
    assert created
    assert all(answer == created[0] for answer in created)
    assert sum(1 for r in responses if r.status_code == 201 and "Idempotent-Replayed" not in r) == 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_batches_of_the_same_kinds_in_opposite_orders_all_commit():
    # Each batch's records in another order, each with its own key: nothing two batches share
    # can be locked in opposite orders, so none waits for another and none deadlocks.
    orders = [MIXED_KINDS, MIXED_KINDS[::-1]] * 3
    barrier = threading.Barrier(len(orders))
    responses = []

    def send(number, kinds):
        barrier.wait()
        try:
            for round_ in range(3):
                key = f"order-{number}-{round_}"
                responses.append(post_batch(Client(), batch_of(kinds), **{"Idempotency-Key": key}))
        finally:
            connection.close()

    threads = [threading.Thread(target=send, args=(number, kinds)) for number, kinds in enumerate(orders)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert [response.status_code for response in responses] == [201] * len(orders) * 3
    assert sum(AUDIT_MODELS[kind].objects.count() for kind in AuditKind) == len(orders) * 3 * len(MIXED_KINDS)


@pytest.fixture
def workflow_inserts_kill_the_connection():
    """Every INSERT into audit_workflow ends its own session: the database fails mid-batch,
    after the batch's remediation rows went in within the same transaction."""
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE FUNCTION test_kill_session() RETURNS trigger LANGUAGE plpgsql AS"
            " $$ BEGIN PERFORM pg_terminate_backend(pg_backend_pid()); RETURN NEW; END $$;"
            "CREATE TRIGGER test_kill_session BEFORE INSERT ON audit_workflow"
            " FOR EACH ROW EXECUTE FUNCTION test_kill_session();"
        )
    yield
    connection.close()
    with connection.cursor() as cursor:
        cursor.execute("DROP TRIGGER test_kill_session ON audit_workflow; DROP FUNCTION test_kill_session();")


@pytest.mark.django_db(transaction=True)
def test_the_database_failing_mid_batch_stores_nothing_and_is_503(
    api, workflow_inserts_kill_the_connection, monkeypatch
):
    monkeypatch.setattr("kubernaut_storage.database.errors.DB_BACKOFF_S", 0.001)
    body = batch_of([AuditKind.REMEDIATION, AuditKind.WORKFLOW, AuditKind.REMEDIATION])
    before = table_counts()

    response = post_batch(api, body, **{"Idempotency-Key": "doomed"})

    problem = assert_problem(response, 503)
    assert problem["type"].endswith("/database-unavailable")
    assert int(response["Retry-After"]) > 0
    assert table_counts() == before


def test_a_batch_whose_records_do_not_fit_in_flight_is_503_with_retry_after_and_stores_nothing(api, settings):
    settings.AUDIT_RECORDS_IN_FLIGHT = 10
    body = batch_of(MIXED_KINDS[:3])
    before = table_counts()

    with records_in_flight().admitted(8):  # another request's records, in this worker
        problem = assert_problem(response := post_batch(api, body), 503)
        assert response["Retry-After"] == "2"
        assert problem["type"].endswith("/records-in-flight-full")
        assert table_counts() == before
        # A single record takes nothing from the budget: its thread bounds it.
        assert post_audit(api, AuditKind.WORKFLOW, VALID_BODIES[AuditKind.WORKFLOW]()).status_code == 201

    assert post_batch(api, body).status_code == 201  # the same batch, once the records ahead are done
    assert records_in_flight().held == 0


def test_a_refused_or_invalid_batch_gives_its_records_back(api, settings):
    settings.AUDIT_RECORDS_IN_FLIGHT = 10
    invalid = batch_of(MIXED_KINDS[:2])
    invalid["records"][1]["record"]["phase"] = "Sideways"

    assert_problem(post_batch(api, invalid), 400)

    assert records_in_flight().held == 0
