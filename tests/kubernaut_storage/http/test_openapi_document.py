"""`/api/schema/` answers from a document generated once, rendered once per format.

drf-spectacular generated it on every request: a flood of /api/schema/ cost ~50 ms of CPU a
request, and concurrent generations on a fresh worker raced into 500s.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from django.db import connection
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.renderers import OpenApiJsonRenderer, OpenApiYamlRenderer

from kubernaut_storage.http import openapi
from testutils.gunicorn import Gunicorn, database_url, request, running_gunicorn

FLOOD = 96


@pytest.fixture(scope="module")
def fresh_gunicorn(django_db_setup: Any, django_db_blocker: Any) -> Iterator[Gunicorn]:
    with django_db_blocker.unblock():
        url = database_url(connection.settings_dict)
    # Many threads per worker, none of which has answered anything yet.
    with running_gunicorn(DATABASE_URL=url, GUNICORN_THREADS="16") as server:
        yield server


def test_a_flood_on_fresh_workers_gets_one_and_the_same_document(fresh_gunicorn):
    with ThreadPoolExecutor(48) as pool:
        answers = list(pool.map(lambda _: request(fresh_gunicorn.port, "GET", "/api/schema/"), range(FLOOD)))
    assert [answer.status for answer in answers] == [200] * FLOOD
    assert len({answer.body for answer in answers}) == 1
    assert not [line for line in fresh_gunicorn.lines if '"status":500' in line]


@pytest.mark.django_db
def test_the_document_served_is_the_one_drf_spectacular_generates(client):
    generated = SchemaGenerator().get_schema(request=None, public=True)
    for accept, renderer in (("*/*", OpenApiYamlRenderer), ("application/vnd.oai.openapi+json", OpenApiJsonRenderer)):
        answer = client.get("/api/schema/", HTTP_ACCEPT=accept, HTTP_HOST="127.0.0.1")
        assert answer.status_code == 200
        assert answer.content == renderer().render(generated, renderer.media_type)


@pytest.mark.django_db
def test_it_is_generated_and_rendered_once(client, monkeypatch):
    client.get("/api/schema/?format=json", HTTP_HOST="127.0.0.1")

    def regenerated(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("generated again")

    monkeypatch.setattr(SchemaGenerator, "get_schema", regenerated)
    monkeypatch.setattr(OpenApiJsonRenderer, "render", regenerated)
    assert client.get("/api/schema/?format=json", HTTP_HOST="127.0.0.1").status_code == 200


@pytest.mark.django_db
def test_a_version_parameter_changes_only_the_info_block(client):
    answer = client.get("/api/schema/?format=json&version=2.0", HTTP_HOST="127.0.0.1")
    assert answer["Content-Disposition"] == 'inline; filename="kubernaut-storage (2.0).json"'
    document = answer.json()
    assert document["info"]["version"] == "1.0.0 (2.0)"
    assert {**document, "info": None} == {**openapi.openapi_document(), "info": None}
