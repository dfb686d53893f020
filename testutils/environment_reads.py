"""Which environment variables the service's code reads, found by scanning it (not importing it)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RUNTIME_CODE = [ROOT / "manage.py", *(ROOT / package for package in ("kubernaut_storage", "audit", "embeddings"))]
READERS = {ROOT / "kubernaut_storage" / "settings", ROOT / "kubernaut_storage" / "gunicorn_config.py"}
# Only the entry points may default the settings module, as Django's own templates do.
ENTRY_POINTS = {ROOT / "manage.py", ROOT / "kubernaut_storage" / "wsgi.py"}
ENV_NAMES = {"env", "_env", "environ"}  # django-environ's Env() in settings; os.environ aliases


def python_files() -> list[Path]:
    files: list[Path] = []
    for path in RUNTIME_CODE:
        files.extend([path] if path.is_file() else sorted(path.rglob("*.py")))
    return files


def _is_environment(node: ast.expr) -> bool:
    """`os.environ`, `env`, `_env`: the objects environment variables are read from."""
    if isinstance(node, ast.Attribute) and node.attr == "environ":
        return True
    return isinstance(node, ast.Name) and node.id in ENV_NAMES


def names_read(tree: ast.AST) -> set[str]:
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


def reads_by_file() -> dict[Path, set[str]]:
    reads = {path: names_read(ast.parse(path.read_text(), filename=str(path))) for path in python_files()}
    return {path: names for path, names in reads.items() if names}


def variables_read() -> set[str]:
    """Every variable name the service's code reads."""
    return set().union(*reads_by_file().values())
