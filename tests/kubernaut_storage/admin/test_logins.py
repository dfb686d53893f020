"""Admin sign-in: repeated wrong passwords lock the (username, address) pair out, an address
spraying many usernames is refused as a whole (but not a browser that signed in before), and no
pooled database connection is held while a password is hashed."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import pytest
from axes.models import AccessAttempt
from django.contrib.auth import get_user_model
from django.contrib.auth.base_user import AbstractBaseUser
from django.db import connection
from django.db.models import F
from django.test import Client

from kubernaut_storage.admin.authentication import PoolReleasingModelBackend
from kubernaut_storage.admin.sign_in_limits import KNOWN_BROWSER_COOKIE

PASSWORD = "correct horse battery staple"
FORM = "application/x-www-form-urlencoded"  # as the login page posts it


@pytest.fixture
def auditor(db: Any) -> Any:
    return get_user_model().objects.create_user("auditor", password=PASSWORD, is_staff=True)


def _sign_in(client: Client, password: str, *, address: str = "10.0.0.7", username: str = "auditor") -> Any:
    form = urlencode({"username": username, "password": password})
    return client.post("/admin/login/?next=/admin/", form, content_type=FORM, REMOTE_ADDR=address)


def _spray(count: int, *, address: str = "10.0.0.7") -> list[int]:
    """One password over `count` usernames (none of them real), each from a new browser."""
    return [
        _sign_in(Client(), "Winter2025!", address=address, username=f"sprayed-{n}").status_code for n in range(count)
    ]


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


def test_one_address_spraying_usernames_is_refused_after_its_limit(db, settings, monkeypatch):
    hashed: list[str] = []
    set_password = AbstractBaseUser.set_password

    def observed(user: AbstractBaseUser, raw_password: str) -> None:
        hashed.append(raw_password)  # the backend hashes an unknown name's password too
        set_password(user, raw_password)

    monkeypatch.setattr(AbstractBaseUser, "set_password", observed)
    limit = settings.ADMIN_SIGN_IN_ADDRESS_FAILURE_LIMIT
    answers = _spray(limit + 10)
    assert answers == [200] * limit + [429] * 10
    assert len(hashed) == limit  # the refused ones were refused before any lookup or hash
    assert _spray(1, address="10.0.0.8") == [200]  # another address has its own count


def test_the_address_limit_counts_the_cool_off_only(db, settings):
    _spray(settings.ADMIN_SIGN_IN_ADDRESS_FAILURE_LIMIT)
    assert _spray(1) == [429]
    AccessAttempt.objects.update(attempt_time=F("attempt_time") - settings.AXES_COOLOFF_TIME)
    assert _spray(1) == [200]


def test_a_browser_that_signed_in_before_is_not_refused_by_the_address_limit(auditor, settings):
    get_user_model().objects.create_user("colleague", password=PASSWORD, is_staff=True)
    browser = Client()
    assert _sign_in(browser, PASSWORD).status_code == 302
    assert browser.post("/admin/logout/", "", content_type=FORM).status_code == 200
    assert "_auth_user_id" not in browser.session
    _spray(settings.ADMIN_SIGN_IN_ADDRESS_FAILURE_LIMIT)  # from the same (ingress) address

    assert _sign_in(browser, PASSWORD).status_code == 302
    assert "_auth_user_id" in browser.session
    # The cookie names its auditor: the same browser signing in as someone else is refused,
    # and so is a browser that never signed in here.
    assert _sign_in(browser, PASSWORD, username="colleague").status_code == 429
    assert _sign_in(Client(), PASSWORD, username="colleague").status_code == 429


def test_a_made_up_known_browser_cookie_is_not_believed(auditor, settings):
    _spray(settings.ADMIN_SIGN_IN_ADDRESS_FAILURE_LIMIT)
    browser = Client()
    browser.cookies[KNOWN_BROWSER_COOKIE] = "auditor"
    assert _sign_in(browser, PASSWORD).status_code == 429


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
