"""Create an auditor: a staff user who can view the audit trail in the admin and change nothing."""

from __future__ import annotations

import getpass
import sys
from typing import Any, TextIO

from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from audit.admin.auditors import AUDITORS_GROUP, auditor_create


class Command(BaseCommand):
    help = (
        "Create a staff user in the 'auditors' group, which may only view the audit and embedding "
        "records in the admin (/admin/). Never a superuser. The password is asked twice at an "
        "interactive prompt, or read from the first line of standard input with --password-stdin "
        "(for scripts: manage.py create_auditor alice --password-stdin < password-file)."
    )

    # Lets call_command() hand the command a stdin (tests), as createsuperuser does.
    stealth_options = ("stdin",)

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username", help="login name of the new auditor")
        parser.add_argument("--email", default="", help="e-mail address (optional)")
        parser.add_argument(
            "--password-stdin",
            action="store_true",
            help="read the password from the first line of standard input instead of prompting",
        )

    def handle(self, *args: Any, username: str, email: str, password_stdin: bool, **options: Any) -> None:
        if User.objects.filter(username=username).exists():
            raise CommandError(f"a user named {username!r} already exists")
        stdin: TextIO = options.get("stdin") or sys.stdin
        password = self._password_from(stdin) if password_stdin else self._password_prompt()
        try:
            user = auditor_create(username=username, password=password, email=email)
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages)) from exc
        self.stdout.write(
            self.style.SUCCESS(f"created auditor {user.username!r} (staff, view-only, group {AUDITORS_GROUP!r})")
        )

    def _password_from(self, stdin: TextIO) -> str:
        password = stdin.readline().rstrip("\r\n")
        if not password:
            raise CommandError("no password on standard input")
        return password

    def _password_prompt(self) -> str:
        if not sys.stdin.isatty():
            raise CommandError("standard input is not a terminal: use --password-stdin")
        password = getpass.getpass("Password: ")
        if password != getpass.getpass("Password (again): "):
            raise CommandError("the passwords do not match")
        if not password:
            raise CommandError("the password must not be empty")
        return password
