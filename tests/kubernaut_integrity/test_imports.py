"""The transparency-log modules run where the offline check runs: no Django, no database
driver, none of the service's packages; only the standard library, `cryptography` and
`rfc3161-client`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPOSITORY = Path(__file__).resolve().parents[2]
MODULES = ("tlog", "note", "cosignature", "checkpoint", "witness", "timestamps")


@pytest.mark.parametrize("module", MODULES)
def test_module_imports_nothing_of_the_service(module: str) -> None:
    code = (
        "import json, sys; before = set(sys.modules); "
        f"import kubernaut_integrity.{module}; "
        "print(json.dumps(sorted({m.split('.')[0] for m in set(sys.modules) - before} - set(sys.stdlib_module_names))))"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=REPOSITORY, capture_output=True, text=True, check=True)
    imported = set(json.loads(done.stdout))
    assert "kubernaut_integrity" in imported
    assert imported <= {"kubernaut_integrity", "cryptography", "rfc3161_client", "_cffi_backend", "_openssl"}
