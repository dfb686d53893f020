"""Admin sign-in: repeated wrong passwords lock the (username, address) pair out, and no pooled
database connection is held while a password is hashed."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.base_user import AbstractBaseUser
from django.db import connection
from django.test import Client

from kubernaut_storage.admin.authentication import PoolReleasingModelBackend

PASSWORD = "correct horse battery staple"
FORM = "application/x-www-form-urlencoded"  # as the login page posts it


@pytest.fixture
def auditor(db: Any) -> Any:
    return get_user_model().objects.create_user("auditor", password=PASSWORD, is_staff=True)


def _sign_in(client: Client, password: str, *, address: str = "10.0.0.7") -> Any:
    form = urlencode({"username": "auditor", "password": password})
    return client.post("/admin/login/?next=/admin/", form, content_type=FORM, REMOTE_ADDR=address)


def test_five_wrong_passwords_lock_the_pair_out(auditor):
    client = Client()
    assert [_sign_in(client, "wrong").status_code for _ in range(5)] == [200, 200, 200, 200, 429]
    assert _sign_in(client, PASSWORD).status_code == 429  # even the right password, for a while
    assert "_auth_user_id" not in client.session
    # Another address is not locked out: one attacker cannot lock every auditor out of every place.
    assert _sign_in(Client(), PASSWORD, address="10.0.0.8").status_code == 302


def test_a_success_resets_the_count(auditor):
    client = Client()
    for _ in range(4):
        _sign_in(client, "wrong")
    assert _sign_in(client, PASSWORD).status_code == 302
    assert [_sign_in(Client(), "wrong").status_code for _ in range(4)] == [200] * 4


def test_no_connection_is_held_while_the_password_is_hashed(transactional_db, monkeypatch):
    get_user_model().objects.create_user("auditor", password=PASSWORD, is_staff=True)
    held_while_hashing: list[bool] = []
    check_password = AbstractBaseUser.check_password

    def observed(user: AbstractBaseUser, raw_password: str) -> bool:
        held_while_hashing.append(connection.connection is not None)
        return check_password(user, raw_password)

    monkeypatch.setattr(AbstractBaseUser, "check_password", observed)
    backend = PoolReleasingModelBackend()
    assert backend.authenticate(None, username="auditor", password=PASSWORD) is not None
    assert backend.authenticate(None, username="auditor", password="wrong") is None
    assert held_while_hashing == [False, False]
    assert backend.authenticate(None, username="nobody", password="x") is None
    assert connection.connection is None
