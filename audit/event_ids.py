"""The ids the service gives audit events: UUID version 7 (RFC 9562).

The first 48 bits are the Unix time in milliseconds, so ids made one after the other sort
together: a batch's inserts land at the right edge of the `event_id` index instead of on random
pages of it, as version 4 ids would. The other 74 bits are random. Any UUID is what upstream's
document asks for (`format: uuid`); the version does not matter to its clients.

Made by the service, never by the database: the write path knows every id of a batch before it
inserts, answers them in input order, and a retried statement reuses them.
"""

from __future__ import annotations

import os
import time
import uuid

_VERSION_7 = 0x7 << 76
_VARIANT_RFC = 0b10 << 62


def event_id_new() -> uuid.UUID:
    milliseconds = time.time_ns() // 1_000_000
    random = int.from_bytes(os.urandom(10))
    rand_a = random >> 68  # 12 bits
    rand_b = random & ((1 << 62) - 1)  # 62 bits
    return uuid.UUID(int=(milliseconds & ((1 << 48) - 1)) << 80 | _VERSION_7 | rand_a << 64 | _VARIANT_RFC | rand_b)
