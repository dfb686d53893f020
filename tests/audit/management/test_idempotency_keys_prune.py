"""`manage.py idempotency_keys_prune` deletes only keys past their 24 h, in batches, with --yes."""

from __future__ import annotations

import datetime as dt
import io

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from audit.models import IdempotencyKey

pytestmark = pytest.mark.django_db


@pytest.fixture
def keys() -> dict[str, list[int]]:
    now = timezone.now()

    def claim(key: str, age: dt.timedelta) -> int:
        return IdempotencyKey.objects.create(
            actor="sa", scope="remediation", key=key, request_sha256="0" * 64, response_body={}, created_at=now - age
        ).id

    return {
        "old": [claim(f"old-{n}", dt.timedelta(hours=30 + n)) for n in range(7)],
        "fresh": [claim(f"fresh-{n}", dt.timedelta(hours=n)) for n in range(3)],
        "day_and_a_half": [claim("36h", dt.timedelta(hours=36, minutes=30))],
    }


def _prune(*args: str) -> str:
    out = io.StringIO()
    call_command("idempotency_keys_prune", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def test_dry_run_counts_and_deletes_nothing(keys):
    output = _prune()
    assert "8 idempotency key(s) claimed before" in output
    assert "Dry run: nothing deleted" in output
    assert IdempotencyKey.objects.count() == 11


def test_yes_deletes_keys_older_than_24_hours_in_batches(keys):
    output = _prune("--yes", "--batch-size", "3")
    assert "8 idempotency key(s) deleted." in output
    assert set(IdempotencyKey.objects.values_list("id", flat=True)) == set(keys["fresh"])


def test_a_longer_age_keeps_more(keys):
    _prune("--yes", "--older-than-hours", "36")
    remaining = set(IdempotencyKey.objects.values_list("key", flat=True))
    assert remaining == {"fresh-0", "fresh-1", "fresh-2", "old-0", "old-1", "old-2", "old-3", "old-4", "old-5"}


def test_less_than_24_hours_is_refused(keys):
    with pytest.raises(CommandError, match="at least 24"):
        _prune("--yes", "--older-than-hours", "23")
    assert IdempotencyKey.objects.count() == 11
