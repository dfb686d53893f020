"""Auditor accounts: staff users who may view the audit trail and nothing else.

The `auditors` group holds exactly the view permissions of the audit and embedding models. The
admin itself refuses add, change and delete to everyone (audit/admin/support.py); the group
keeps auditors out of everything else the admin shows (users, groups).
"""

from __future__ import annotations

from django.contrib.auth.models import Group, Permission, User
from django.contrib.auth.password_validation import validate_password
from django.db import transaction

AUDITORS_GROUP = "auditors"
#: The apps whose models auditors may view.
AUDITED_APPS = ("audit", "embeddings")


def auditors_group_ensure() -> Group:
    """Create the group if needed and set its permissions to exactly the view permissions."""
    group, _ = Group.objects.get_or_create(name=AUDITORS_GROUP)
    permissions = Permission.objects.filter(content_type__app_label__in=AUDITED_APPS, codename__startswith="view_")
    group.permissions.set(permissions)
    return group


@transaction.atomic
def auditor_create(*, username: str, password: str, email: str = "") -> User:
    """A new active staff user (never a superuser) in the auditors group.

    Raises django.core.exceptions.ValidationError when the password fails the validators.
    """
    user = User(username=username, email=email, is_staff=True, is_superuser=False, is_active=True)
    validate_password(password, user)
    user.set_password(password)
    user.full_clean(exclude=["password"])
    user.save()
    user.groups.add(auditors_group_ensure())
    return user
