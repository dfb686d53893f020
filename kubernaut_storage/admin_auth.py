"""The admin's authentication backend under the dotted path its sessions store.

Django keeps the backend's dotted path in every signed-in session and logs the session out when
that path is no longer in AUTHENTICATION_BACKENDS; the settings name the backend here, so moving
its code never signs auditors out on a deploy.
"""

from kubernaut_storage.admin.authentication import PoolReleasingModelBackend

__all__ = ["PoolReleasingModelBackend"]
