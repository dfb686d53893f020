"""Event ids: UUID version 7, ordered by the time they were made."""

from __future__ import annotations

import time
import uuid

from audit.event_ids import event_id_new


def test_ids_are_rfc_9562_version_7():
    event_id = event_id_new()
    assert event_id.version == 7
    assert event_id.variant == uuid.RFC_4122
    assert uuid.UUID(str(event_id)) == event_id


def test_the_first_48_bits_are_the_time_in_milliseconds():
    before = time.time_ns() // 1_000_000
    event_id = event_id_new()
    after = time.time_ns() // 1_000_000
    assert before <= event_id.int >> 80 <= after


def test_ids_made_a_millisecond_apart_sort_in_that_order_and_never_repeat():
    first = event_id_new()
    time.sleep(0.002)
    second = event_id_new()
    assert str(first) < str(second)
    assert len({event_id_new() for _ in range(10_000)}) == 10_000
