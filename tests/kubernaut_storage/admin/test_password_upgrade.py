"""The first sign-in after a password hasher changed rewrites the hash, as the admin's own role.

Django upgrades a stored hash when its hasher's parameters changed (each Django release raises
PBKDF2's iterations: 870,000 in 5.1, 1,000,000 in 5.2). The admin pods' database role
(k8s/sql/roles.sql, applied with the real psql) must be allowed that UPDATE, or the auditor's
first sign-in after the upgrade fails.
"""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urlencode

import psycopg
import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import PBKDF2PasswordHasher, make_password
from django.db import connection
from django.test import Client

from tests.kubernaut_storage.database.test_roles import ADMIN, OWNER, RUNTIME, psql_script

PASSWORD = "correct horse battery staple"


class Django51PBKDF2PasswordHasher(PBKDF2PasswordHasher):
    """PBKDF2 as Django 5.1 made it: the hashes stored before an upgrade."""

    iterations = 870_000


@pytest.fixture
def admin_role_connection(transactional_db: None) -> Iterator[None]:
    """Apply the roles script, then reconnect Django as the admin pods' role."""
    database, socket_dir = connection.settings_dict["NAME"], connection.settings_dict["HOST"]
    psql_script(database=database, socket_dir=socket_dir)
    connection.close()
    connection.settings_dict["USER"] = ADMIN
    connection.close_pool()  # a pool keeps the role it was made with
    try:
        yield
    finally:
        connection.close()
        connection.settings_dict["USER"] = "postgres"
        connection.close_pool()
        with psycopg.connect(host=socket_dir, user="postgres", dbname=database, autocommit=True) as owner:
            # Roles are cluster-wide: leave none behind (one at a time, as test_roles does).
            for role in (OWNER, RUNTIME, ADMIN):
                owner.execute(f"DROP OWNED BY {role}")
            owner.execute(f"DROP ROLE {OWNER}, {RUNTIME}, {ADMIN}")


@pytest.fixture
def auditor_hashed_by_django_51(transactional_db: None, settings) -> str:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.PBKDF2PasswordHasher"]
    user = get_user_model().objects.create_user("auditor", is_staff=True)
    user.password = make_password(PASSWORD, hasher=Django51PBKDF2PasswordHasher())
    user.save(update_fields=["password"])
    return str(user.password)


def test_the_first_sign_in_after_a_hasher_upgrade_rewrites_the_hash(auditor_hashed_by_django_51, admin_role_connection):
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_user")
        assert cursor.fetchone()[0] == ADMIN

    browser = Client()
    form = urlencode({"username": "auditor", "password": PASSWORD})
    answer = browser.post("/admin/login/?next=/admin/", form, content_type="application/x-www-form-urlencoded")

    assert answer.status_code == 302
    assert "_auth_user_id" in browser.session
    stored = get_user_model().objects.get(username="auditor").password
    assert auditor_hashed_by_django_51.startswith("pbkdf2_sha256$870000$")
    assert stored.startswith(f"pbkdf2_sha256${PBKDF2PasswordHasher.iterations}$")
    assert browser.get("/admin/").status_code == 200  # the session holds with the new hash
