"""The apps depend one way: `audit` uses `embeddings`, and `embeddings` knows nothing of audit
records (their kinds, texts, admin or backfill), so either can be read and changed alone."""

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


def test_the_scan_sees_imports():
    assert "embeddings.models" in _imported_modules(ROOT / "audit" / "write" / "statements.py")
