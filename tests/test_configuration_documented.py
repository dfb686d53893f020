"""Every environment variable the service reads is read in one place and listed in the README.

The code is scanned, not imported: a read added anywhere fails here until the README's
configuration table names it, and a read outside the settings package (or the gunicorn config,
which runs before Django's settings exist) fails outright.
"""

from __future__ import annotations

import re

from testutils.environment_reads import ENTRY_POINTS, READERS, ROOT, reads_by_file


def _readme_configuration_names() -> set[str]:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    return {name for row in rows for name in re.findall(r"`([A-Z][A-Z0-9_]+)`", row.split("|")[1])}


def test_the_scan_finds_the_reads_it_should():
    reads = reads_by_file()
    assert {"DATABASE_URL", "AUTH_MODE", "KUBERNETES_SERVICE_HOST"} <= set().union(*reads.values())
    assert "GUNICORN_WORKERS" in reads[ROOT / "kubernaut_storage" / "gunicorn_config.py"]


def test_environment_is_read_only_in_the_settings_and_the_gunicorn_config():
    stray = {
        str(path.relative_to(ROOT)): sorted(names)
        for path, names in reads_by_file().items()
        if not any(path == reader or reader in path.parents for reader in READERS)
        and not (path in ENTRY_POINTS and names == {"DJANGO_SETTINGS_MODULE"})
    }
    assert stray == {}


def test_every_variable_read_is_in_the_readme_table():
    documented = _readme_configuration_names()
    undocumented = {
        str(path.relative_to(ROOT)): sorted(names - documented)
        for path, names in reads_by_file().items()
        if names - documented
    }
    assert undocumented == {}
