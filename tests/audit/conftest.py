"""Fixtures of the admin and operator tests: an auditor made by the real command, a superuser."""

from __future__ import annotations

import io
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.test import Client

AUDITOR_USERNAME = "auditor-alice"
AUDITOR_PASSWORD = "Kubernaut-audit-2026!"


@pytest.fixture
def auditor(db: Any) -> User:
    call_command(
        "create_auditor",
        AUDITOR_USERNAME,
        "--password-stdin",
        stdin=io.StringIO(AUDITOR_PASSWORD + "\n"),
        stdout=io.StringIO(),
    )
    return User.objects.get(username=AUDITOR_USERNAME)


@pytest.fixture
def superuser(db: Any) -> User:
    return User.objects.create_superuser("root", "root@example.com", "Root-password-2026!")


@pytest.fixture
def auditor_client(auditor: User) -> Client:
    client = Client()
    client.force_login(auditor)
    return client


@pytest.fixture
def superuser_client(superuser: User) -> Client:
    client = Client()
    client.force_login(superuser)
    return client
