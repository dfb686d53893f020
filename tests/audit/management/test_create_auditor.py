"""`manage.py create_auditor` makes a view-only staff user, and refuses what it should."""

from __future__ import annotations

import io

import pytest
from django.contrib.auth.models import Group, Permission, User
from django.core.management import call_command
from django.core.management.base import CommandError

from audit.admin.auditors import AUDITORS_GROUP

pytestmark = pytest.mark.django_db

PASSWORD = "Kubernaut-audit-2026!"


def _create(username: str, stdin: str, *args: str) -> str:
    out = io.StringIO()
    call_command("create_auditor", username, *args, stdin=io.StringIO(stdin), stdout=out)
    return out.getvalue()


def test_creates_a_staff_user_who_can_log_in_with_the_password_from_stdin():
    output = _create("bob", PASSWORD + "\n", "--password-stdin", "--email", "bob@example.com")
    user = User.objects.get(username="bob")
    assert "created auditor 'bob'" in output
    assert user.check_password(PASSWORD)
    assert user.is_staff
    assert not user.is_superuser
    assert user.email == "bob@example.com"
    assert list(user.groups.values_list("name", flat=True)) == [AUDITORS_GROUP]


def test_the_group_holds_only_view_permissions_even_if_someone_widened_it():
    group = Group.objects.create(name=AUDITORS_GROUP)
    group.permissions.add(Permission.objects.get(codename="delete_remediationaudit"))
    _create("carol", PASSWORD + "\n", "--password-stdin")
    codenames = set(Group.objects.get(name=AUDITORS_GROUP).permissions.values_list("codename", flat=True))
    assert codenames
    assert all(codename.startswith("view_") for codename in codenames)


def test_an_existing_username_is_refused():
    _create("dave", PASSWORD + "\n", "--password-stdin")
    with pytest.raises(CommandError, match="already exists"):
        _create("dave", PASSWORD + "\n", "--password-stdin")


def test_a_weak_password_is_refused_and_no_user_is_created():
    with pytest.raises(CommandError, match=r"too short|too common"):
        _create("erin", "abc\n", "--password-stdin")
    assert not User.objects.filter(username="erin").exists()


def test_an_empty_stdin_is_refused():
    with pytest.raises(CommandError, match="no password"):
        _create("frank", "", "--password-stdin")


def test_without_a_terminal_the_prompt_is_refused():
    # pytest's stdin is not a terminal: the command must not hang waiting for a password.
    with pytest.raises(CommandError, match="--password-stdin"):
        _create("grace", "")
