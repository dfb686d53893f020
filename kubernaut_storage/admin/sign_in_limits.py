"""How many wrong passwords the admin's sign-in takes, per (username, address) and per address.

django-axes locks a (username, client address) pair out after AXES_FAILURE_LIMIT wrong
passwords. That alone let one address spray one password over 90 usernames at 6.8 tries a
second, every one of them hashed. So an address is also limited as a whole: after
ADMIN_SIGN_IN_ADDRESS_FAILURE_LIMIT failed sign-ins within AXES_COOLOFF_TIME (any usernames) it
is refused (429, before any lookup or hash) until the oldest of them are that old.

Behind an ingress every auditor has the ingress's address, so that limit alone would let an
attacker keep all of them out. A browser that signed in successfully carries a signed cookie
naming its auditor (KNOWN_BROWSER_COOKIE, ADMIN_KNOWN_BROWSER_DAYS): its sign-ins as that
auditor are not refused by the address's limit, only by their own (username, address) one.
The cookie proves a past sign-in, not an identity: whoever steals it still needs the password,
and gets AXES_FAILURE_LIMIT tries per cool-off like anyone.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from axes.attempts import get_cool_off_threshold
from axes.handlers.database import AxesDatabaseHandler
from axes.helpers import get_client_username
from axes.models import AccessAttempt
from django.conf import settings
from django.db.models import Sum
from django.http import HttpRequest, HttpResponse

KNOWN_BROWSER_COOKIE = "kubernaut_admin_known_browser"
_KNOWN_BROWSER_SALT = "kubernaut_storage.admin.sign_in_limits.known_browser"


def _known_browser_max_age() -> int:
    return int(dt.timedelta(days=settings.ADMIN_KNOWN_BROWSER_DAYS).total_seconds())


def known_browser_username(request: HttpRequest) -> str | None:
    """The auditor this browser signed in as before, if its cookie is genuine and recent."""
    username = request.get_signed_cookie(
        KNOWN_BROWSER_COOKIE, default=None, salt=_KNOWN_BROWSER_SALT, max_age=_known_browser_max_age()
    )
    return username if isinstance(username, str) else None


def address_failures(request: Any) -> int:
    """Failed sign-ins from the request's client address within the cool-off, whatever the usernames."""
    recent = AccessAttempt.objects.filter(
        ip_address=request.axes_ip_address, attempt_time__gte=get_cool_off_threshold(request)
    )
    return int(recent.aggregate(failures=Sum("failures_since_start"))["failures"] or 0)


class AddressLimitedAxesHandler(AxesDatabaseHandler):
    """axes' database handler, with the address's own limit and the known browsers' exemption."""

    def is_locked(self, request: Any, credentials: dict[str, Any] | None = None) -> bool:
        if super().is_locked(request, credentials):
            return True
        if address_failures(request) < settings.ADMIN_SIGN_IN_ADDRESS_FAILURE_LIMIT:
            return False
        username = get_client_username(request, credentials)
        return username is None or username != known_browser_username(request)

    def user_logged_in(self, sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
        super().user_logged_in(sender, request, user, **kwargs)
        request.known_browser_username = user.get_username()


class KnownBrowserMiddleware:
    """Hands the cookie to a browser that just signed in (right before axes' own middleware)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        username = getattr(request, "known_browser_username", None)
        if username is not None:
            response.set_signed_cookie(
                KNOWN_BROWSER_COOKIE,
                username,
                salt=_KNOWN_BROWSER_SALT,
                max_age=_known_browser_max_age(),
                path="/admin/",
                secure=settings.SESSION_COOKIE_SECURE,
                httponly=True,
                samesite="Lax",
            )
        return response
