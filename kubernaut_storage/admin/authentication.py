"""Admin sign-in that does not hold a pooled database connection while it hashes a password.

A password hash (PBKDF2, 1,000,000 rounds) takes a good part of a second. Django's ModelBackend
looks the user up, then hashes with the connection still checked out of the pool the write
path shares: 30 concurrent wrong-password logins emptied it, and audit writes got 503. Here the
connection goes back to the pool between the lookup and the hash.

Lockouts after repeated failures come from django-axes (settings: AXES_*), whose backend runs
first: a locked-out attempt is refused before any lookup or hash.
"""

from __future__ import annotations

from typing import Any, cast

from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.models import User
from django.http import HttpRequest

from kubernaut_storage.database.connections import connection_release


class PoolReleasingModelBackend(ModelBackend):
    """ModelBackend, with the database connection released before the password hash."""

    def authenticate(  # type: ignore[override] # the stubs' ModelBackend and BaseBackend disagree
        self, request: HttpRequest | None, username: str | None = None, password: str | None = None, **kwargs: Any
    ) -> User | None:
        user_model = get_user_model()
        if username is None:
            username = kwargs.get(user_model.USERNAME_FIELD)
        if username is None or password is None:
            return None
        try:
            user = cast(User, user_model._default_manager.get_by_natural_key(username))
        except user_model.DoesNotExist:
            connection_release()
            # Hash anyway, as ModelBackend does: an unknown name must take as long as a known one.
            user_model().set_password(password)
            return None
        connection_release()
        if user.check_password(password) and self.user_can_authenticate(user):
            return user
        return None
