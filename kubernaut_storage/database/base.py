"""ENGINE "kubernaut_storage.database": PostgreSQL, instrumented, embedded server on demand.

Settings stay inert: importing them starts nothing (mypy, collectstatic and `manage.py --help`
never touch a database). A DATABASES entry carrying an "EMBEDDED_POSTGRES" section and no HOST
starts (or attaches to) the embedded server the first time any connection of the process is
opened, then fills in HOST with the server's socket directory, so later connections, pools and
tests read it from settings_dict like any other host.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from django_prometheus.db.backends.postgresql import base as instrumented

from kubernaut_storage.database.embedded_postgres import embedded_server_start

_start_lock = threading.Lock()


def embedded_host_ensure(settings_dict: dict[str, Any]) -> None:
    """Start the embedded server `settings_dict` asks for, unless HOST is already known."""
    embedded = settings_dict.get("EMBEDDED_POSTGRES")
    if not embedded or settings_dict.get("HOST"):
        return
    with _start_lock:
        if settings_dict.get("HOST"):
            return  # another thread of this process started it meanwhile
        settings_dict["HOST"] = embedded_server_start(
            data_dir=Path(embedded["DATA_DIR"]), database=embedded["DATABASE"]
        )


class DatabaseWrapper(instrumented.DatabaseWrapper):  # type: ignore[misc]
    def get_connection_params(self) -> dict[str, Any]:
        # Django's pool also builds its connection arguments here, so this covers both paths.
        embedded_host_ensure(self.settings_dict)
        params: dict[str, Any] = super().get_connection_params()
        return params
