"""Which code may import which, checked on the source (AST), so a wrong import fails here.

- The apps depend one way: `audit` uses `embeddings`, and `embeddings` knows nothing of audit
  records (their kinds, texts, admin or backfill), so either can be read and changed alone.
- The project package `kubernaut_storage` wires the apps in and imports none of them but in
  `urls.py`: the apps register what the project serves for them (readiness details,
  scrape-time metrics, their part of the OpenAPI document).
- Nothing outside `tests/` imports `tests`: shared test and benchmark harness lives in the
  `testutils` package, which the benchmarks may use too.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _imported_modules(path: Path) -> set[str]:
    modules: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.ImportFrom) and node.module:
            modules.add(node.module)
        elif isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
    return modules


def test_embeddings_never_imports_audit():
    offending = {
        str(path.relative_to(ROOT)): sorted(m for m in _imported_modules(path) if m.split(".")[0] == "audit")
        for path in sorted((ROOT / "embeddings").rglob("*.py"))
    }
    assert {path: modules for path, modules in offending.items() if modules} == {}


APPS = ("audit", "embeddings")


def test_the_project_package_imports_no_app_but_in_its_urls():
    offending = {
        str(path.relative_to(ROOT)): sorted(m for m in _imported_modules(path) if m.split(".")[0] in APPS)
        for path in sorted((ROOT / "kubernaut_storage").rglob("*.py"))
        if path != ROOT / "kubernaut_storage" / "urls.py"
    }
    assert {path: modules for path, modules in offending.items() if modules} == {}


def _python_files_outside_tests() -> list[Path]:
    skipped = {"tests", ".venv", ".data", ".git"}
    return [path for path in sorted(ROOT.rglob("*.py")) if path.relative_to(ROOT).parts[0] not in skipped]


def test_nothing_outside_the_tests_imports_them():
    offending = {
        str(path.relative_to(ROOT)): sorted(m for m in _imported_modules(path) if m.split(".")[0] == "tests")
        for path in _python_files_outside_tests()
    }
    assert {path: modules for path, modules in offending.items() if modules} == {}


def test_the_scan_sees_imports():
    assert "embeddings.models" in _imported_modules(ROOT / "audit" / "write" / "statements.py")
    # Imports inside functions count too.
    assert "audit.integrity.metrics" in _imported_modules(ROOT / "audit" / "apps.py")
