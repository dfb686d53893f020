"""Every environment variable the service reads is read in one place and listed in the README.

The code is scanned, not imported: a read added anywhere fails here until the README's
configuration table names it, and a read outside the settings package (or the gunicorn config,
which runs before Django's settings exist) fails outright.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RUNTIME_CODE = [ROOT / "manage.py", *(ROOT / package for package in ("kubernaut_storage", "audit", "embeddings"))]
READERS = {ROOT / "kubernaut_storage" / "settings", ROOT / "kubernaut_storage" / "gunicorn_config.py"}
# Only the entry points may default the settings module, as Django's own templates do.
ENTRY_POINTS = {ROOT / "manage.py", ROOT / "kubernaut_storage" / "wsgi.py"}
ENV_NAMES = {"env", "_env", "environ"}  # django-environ's Env() in settings; os.environ aliases


def _python_files() -> list[Path]:
    files: list[Path] = []
    for path in RUNTIME_CODE:
        files.extend([path] if path.is_file() else sorted(path.rglob("*.py")))
    return files


def _is_environment(node: ast.expr) -> bool:
    """`os.environ`, `env`, `_env`: the objects environment variables are read from."""
    if isinstance(node, ast.Attribute) and node.attr == "environ":
        return True
    return isinstance(node, ast.Name) and node.id in ENV_NAMES


def _names_read(tree: ast.AST) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(tree):
        key: ast.expr | None = None
        if isinstance(node, ast.Call) and node.args:
            func = node.func
            if isinstance(func, ast.Attribute) and (_is_environment(func.value) or func.attr == "getenv"):
                key = node.args[0]  # env.str("X"), os.environ.get("X"), os.getenv("X"), ...
            elif isinstance(func, ast.Name) and func.id in ENV_NAMES:
                key = node.args[0]  # env("X")
        elif isinstance(node, ast.Subscript) and _is_environment(node.value):
            key = node.slice  # os.environ["X"]
        elif isinstance(node, ast.Compare) and any(_is_environment(c) for c in node.comparators):
            key = node.left  # "X" in os.environ
        if isinstance(key, ast.Constant) and isinstance(key.value, str) and key.value.isupper():
            names.add(key.value)
    return names


def _reads_by_file() -> dict[Path, set[str]]:
    reads = {path: _names_read(ast.parse(path.read_text(), filename=str(path))) for path in _python_files()}
    return {path: names for path, names in reads.items() if names}


def _readme_configuration_names() -> set[str]:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    return {name for row in rows for name in re.findall(r"`([A-Z][A-Z0-9_]+)`", row.split("|")[1])}


def test_the_scan_finds_the_reads_it_should():
    reads = _reads_by_file()
    assert {"DATABASE_URL", "AUTH_MODE", "KUBERNETES_SERVICE_HOST"} <= set().union(*reads.values())
    assert "GUNICORN_WORKERS" in reads[ROOT / "kubernaut_storage" / "gunicorn_config.py"]


def test_environment_is_read_only_in_the_settings_and_the_gunicorn_config():
    stray = {
        str(path.relative_to(ROOT)): sorted(names)
        for path, names in _reads_by_file().items()
        if not any(path == reader or reader in path.parents for reader in READERS)
        and not (path in ENTRY_POINTS and names == {"DJANGO_SETTINGS_MODULE"})
    }
    assert stray == {}


def test_every_variable_read_is_in_the_readme_table():
    documented = _readme_configuration_names()
    undocumented = {
        str(path.relative_to(ROOT)): sorted(names - documented)
        for path, names in _reads_by_file().items()
        if names - documented
    }
    assert undocumented == {}
