"""Every operator command explains itself in --help, and the destructive ones say how to run them."""

from __future__ import annotations

import pytest
from django.core.management import get_commands, load_command_class

COMMANDS = {
    # command: phrases its --help must contain
    "audit_partitions_ensure": ["--months-ahead", "DEFAULT partition"],
    "audit_retention": ["--older-than", "--yes", "--archive-dir", "manifest", "SHA-256", "dry run"],
    "idempotency_keys_prune": ["--older-than-hours", "--yes", "--batch-size", "24"],
    "create_auditor": ["USERNAME", "--password-stdin", "auditors", "view"],
    "audit_archive_verify": ["SHA-256", "manifest", "AUDIT_ARCHIVE_DIR"],
}


@pytest.mark.parametrize(("name", "phrases"), COMMANDS.items())
def test_help_documents_the_command(name, phrases):
    command = load_command_class(get_commands()[name], name)
    text = " ".join(command.create_parser("manage.py", name).format_help().split())
    for phrase in phrases:
        assert phrase.lower() in text.lower(), (name, phrase)
