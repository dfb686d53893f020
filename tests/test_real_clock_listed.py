"""The README lists every test marked `real_clock`, and nothing else: the list is how a reader
learns which tests are slow by nature and why, so it must not drift from the marks."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LIST = re.compile(r"<!-- real-clock tests:.*?-->\n(.*?)<!-- end of real-clock tests -->", re.S)


def _marked() -> set[str]:
    marked = set()
    for path in sorted((ROOT / "tests").rglob("test_*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and any(
                ast.unparse(decorator) == "pytest.mark.real_clock" for decorator in node.decorator_list
            ):
                marked.add(f"{path.relative_to(ROOT)}::{node.name}")
    return marked


def test_the_readme_lists_exactly_the_tests_marked_real_clock():
    section = LIST.search((ROOT / "README.md").read_text())
    assert section is not None
    listed = set(re.findall(r"^- `([^`]+)`$", section.group(1), re.M))
    assert listed == _marked()
    assert listed  # the scan sees the marks
