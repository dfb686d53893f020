"""ADMIN_ENABLED=false: the process serves no admin URL (API-only pods, docs/DATABASE_ROLES.md)."""

from __future__ import annotations

import importlib
from collections.abc import Iterator

import pytest
from django.urls import clear_url_caches

from kubernaut_storage import urls


@pytest.fixture
def urlconf_reloaded(settings) -> Iterator[None]:
    yield
    settings.ADMIN_ENABLED = True
    importlib.reload(urls)
    clear_url_caches()


@pytest.mark.usefixtures("urlconf_reloaded")
def test_no_admin_urls_when_disabled(settings, client):
    settings.ADMIN_ENABLED = False
    importlib.reload(urls)
    clear_url_caches()
    routes = [str(pattern.pattern) for pattern in urls.urlpatterns]
    assert not any(route.startswith("admin/") for route in routes)
    assert "api/v1/" in routes
    assert client.get("/admin/login/").status_code == 404
