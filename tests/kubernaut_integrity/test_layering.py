"""kubernaut_integrity stands alone: a third party runs it with Python, `cryptography`,
`rfc3161-client` and `zstandard` only, no Django, no database driver, nothing of the service.

Checked in a fresh interpreter that imports every module of the package one after the other,
noting what each one loads first, since this test process has Django and the whole project
loaded already."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[2]

#: Top-level modules besides the standard library that kubernaut_integrity may load: itself,
#: `cryptography` with the native modules it loads, `rfc3161_client` (time anchors) and
#: `zstandard` (the archives).
ALLOWED = {"kubernaut_integrity", "cryptography", "_cffi_backend", "_openssl", "cffi", "rfc3161_client", "zstandard"}

IMPORT_EVERY_MODULE = """
import importlib, json, pkgutil, sys
import kubernaut_integrity
loaded = {}
for info in pkgutil.walk_packages(kubernaut_integrity.__path__, "kubernaut_integrity."):
    before = set(sys.modules)
    importlib.import_module(info.name)
    new = {name.split(".")[0] for name in set(sys.modules) - before}
    loaded[info.name] = sorted(new - set(sys.stdlib_module_names))
print(json.dumps(loaded))
"""


def _loaded_by_each_module(code: str) -> dict[str, list[str]]:
    done = subprocess.run([sys.executable, "-c", code], cwd=REPOSITORY, capture_output=True, text=True, check=True)
    loaded: dict[str, list[str]] = json.loads(done.stdout)
    return loaded


def test_importing_kubernaut_integrity_loads_neither_django_nor_the_project() -> None:
    loaded = _loaded_by_each_module(IMPORT_EVERY_MODULE)
    assert {"kubernaut_integrity.__main__", "kubernaut_integrity.archive_verification"} <= loaded.keys()
    assert {"kubernaut_integrity.tlog", "kubernaut_integrity.timestamps"} <= loaded.keys()
    offending = {module: sorted(set(names) - ALLOWED) for module, names in loaded.items()}
    assert {module: names for module, names in offending.items() if names} == {}


def test_the_check_sees_an_import_of_django() -> None:
    """The same probe, where a module loads Django, names that module and Django."""
    probe = IMPORT_EVERY_MODULE.replace(
        "importlib.import_module(info.name)\n",
        "importlib.import_module(info.name)\n    if info.name.endswith('.merkle'): import django.conf\n",
    )
    assert "django" in _loaded_by_each_module(probe)["kubernaut_integrity.merkle"]
