"""Who wrote a record: the snapshot of the caller stored in every audit row's `actor`."""

from __future__ import annotations

from rest_framework.request import Request

#: The actor of writes made with authentication off (local mode, loopback only).
LOCAL_ACTOR = "local:unauthenticated"


def request_actor(request: Request) -> str:
    user = request.user
    if user is not None and user.is_authenticated:
        return str(user.username)
    return LOCAL_ACTOR
