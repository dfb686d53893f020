"""docs/ARCHITECTURE.md's module map has one row per folder of code, and no row for a folder
that is gone: the map is how a newcomer finds a concern, so it must not drift from the tree."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("kubernaut_storage", "audit", "embeddings", "kubernaut_integrity", "testutils", "bench")


def _code_folders() -> set[str]:
    return {
        f"{path.parent.relative_to(ROOT)}/"
        for package in PACKAGES
        for path in (ROOT / package).rglob("*.py")
        # A folder holding only its __init__.py (management/, formats/) is a path, not a concern.
        if "__pycache__" not in path.parts and path.name != "__init__.py"
    }


def _mapped_folders() -> set[str]:
    text = (ROOT / "docs" / "ARCHITECTURE.md").read_text()
    section = text[text.index("## Module map") : text.index("## The write path")]
    return set(re.findall(r"^\| `([\w/]+/)` \|", section, re.M))


def test_every_folder_of_code_has_one_row_and_every_row_a_folder():
    assert _mapped_folders() == _code_folders()


def test_every_module_a_row_names_exists_in_its_folder():
    text = (ROOT / "docs" / "ARCHITECTURE.md").read_text()
    section = text[text.index("## Module map") : text.index("## The write path")]
    missing = [
        f"{folder}{module}"
        for folder, row in re.findall(r"^\| `([\w/]+/)` \| (.*)$", section, re.M)
        for module in re.findall(r"`([\w]+\.py)`", row)
        if not (ROOT / folder / module).exists()
    ]
    assert missing == []
