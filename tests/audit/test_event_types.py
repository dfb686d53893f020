"""The one list of upstream's event types (audit/event_types.py)."""

from __future__ import annotations

from collections import Counter

from audit.event_types import EVENT_TYPE_CATEGORY, EVENT_TYPE_LIST, EVENT_TYPES, EventCategory
from testutils.events import MINIMAL_EVENT_DATA

#: The keys of the `event_data` discriminator mapping in upstream's API document.
DOCUMENTED_EVENT_TYPE_COUNT = 142


def test_the_list_holds_every_documented_type_once():
    assert len(EVENT_TYPE_LIST) == DOCUMENTED_EVENT_TYPE_COUNT
    assert [name for name, count in Counter(EVENT_TYPE_LIST).items() if count > 1] == []
    assert len(EVENT_TYPES) == DOCUMENTED_EVENT_TYPE_COUNT


def test_every_name_has_the_dotted_form_of_upstream_types():
    # Dot-separated lowercase segments of letters, digits and underscores: a typo such as a
    # trailing space or a doubled dot would otherwise silently refuse every event of a type.
    malformed = [
        name
        for name in EVENT_TYPE_LIST
        if "." not in name
        or name != name.lower()
        or not all(part and part.replace("_", "").isalnum() for part in name.split("."))
    ]
    assert malformed == []


def test_categories_are_the_documents_values_or_left_open():
    assert set(EVENT_TYPE_CATEGORY) == EVENT_TYPES
    assert {category for category in EVENT_TYPE_CATEGORY.values() if category is not None} <= set(EventCategory)
    assert len(EventCategory.values) == 14
    # Left open only where two categories fit (docstring of audit/event_types.py).
    open_types = sorted(name for name, category in EVENT_TYPE_CATEGORY.items() if category is None)
    assert all(
        name.startswith("orchestrator.approval.") or ".auth." in name or ".ratelimit." in name for name in open_types
    )


def test_every_type_has_a_minimal_payload_for_the_tests():
    assert set(MINIMAL_EVENT_DATA) == EVENT_TYPES
