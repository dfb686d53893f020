"""The request bodies wrk sends: realistic audit records of all four kinds, as templates.

The bodies come from the cache replay's generator (bench/embedding_cache_replay.py: incidents
of a signal, a root cause, a workflow and an action, reported as four records with fresh
object names, pods, IPs and timestamps in their free text). Each is written as a template
line `<path>\\t<json>` for bench/post.lua, which fills in per request:

- `@ID@`: a unique id, in the record's name and correlation id (every request is a new record);
- `@WORDS@` (fresh texts only): a unique phrase of ordinary words appended to the message, so
  that the record's semantic text — and so its embedding cache key — was never seen before.

Without `@WORDS@` (the cached scenario) the semantic texts repeat: there are as many distinct
texts as templates, so after one pass over the templates every embedding comes from the cache.

`batch_templates` packs those templates into bodies of the batch endpoint, `size` records each,
the kinds mixed as they come; each record's `@ID@` gets its position in the batch appended, so
one request's records have names and correlation ids of their own. `event_batch_templates`
makes bodies of upstream Kubernaut's audit-event batch endpoint.
"""

from __future__ import annotations

import random
from pathlib import Path

import orjson

from bench.embedding_cache_replay import body_for, incidents


def templates(*, count: int, fresh: bool, seed: int = 11) -> list[tuple[str, bytes]]:
    """`count` (path, JSON body) templates, the four kinds in turn, over count // 4 incidents."""
    from audit.models import AuditKind
    from testutils.factories import endpoint

    rng = random.Random(seed)
    kinds = list(AuditKind)
    catalogue = incidents(max(1, count // len(kinds)), rng)
    result = []
    for index in range(count):
        kind = kinds[index % len(kinds)]
        body = body_for(kind, catalogue[index // len(kinds) % len(catalogue)], rng)
        body["name"] = f"{kind.value[:2]}-@ID@"
        body["correlationId"] = "corr-@ID@"
        if fresh:
            body["message"] = f"{body['message']} Observed: @WORDS@."
        result.append((endpoint(kind), orjson.dumps(body)))
    return result


BATCH_ENDPOINT = "/api/v1/audit/batch"


def batch_templates(rows: list[tuple[str, bytes]], *, size: int, count: int) -> list[tuple[str, bytes]]:
    """`count` batch bodies of `size` records, taking `rows` (from `templates`) in turn."""
    batches = []
    for number in range(count):
        records = []
        for position in range(size):
            endpoint, body = rows[(number * size + position) % len(rows)]
            record = orjson.loads(body.replace(b"@ID@", f"@ID@-{position}".encode()))
            records.append({"kind": endpoint.rsplit("/", 1)[1], "record": record})
        batches.append((BATCH_ENDPOINT, orjson.dumps({"records": records})))
    return batches


EVENTS_BATCH_ENDPOINT = "/api/v1/audit/events/batch"


def event_batch_templates(*, size: int, count: int) -> list[tuple[str, bytes]]:
    """`count` bodies of upstream Kubernaut's audit-event batch endpoint, `size` events each:
    the 142 event types in turn, every optional field set, whole-second timestamps of now
    (valid for the 7 days the endpoint accepts). Each event's correlation id is `@ID@` and its
    position, so every request stores new events and no re-post is recognised as a retry."""
    from audit.event_types import EVENT_TYPE_LIST
    from testutils.events import event_body_full

    batches = []
    for number in range(count):
        events = [
            event_body_full(
                EVENT_TYPE_LIST[(number * size + position) % len(EVENT_TYPE_LIST)],
                correlation_id=f"rr-@ID@-{position}",
            )
            for position in range(size)
        ]
        batches.append((EVENTS_BATCH_ENDPOINT, orjson.dumps(events)))
    return batches


def templates_write(path: Path, rows: list[tuple[str, bytes]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as file:
        for endpoint, body in rows:
            # orjson escapes both inside strings, so they can only separate fields and lines.
            assert b"\t" not in body
            assert b"\n" not in body
            file.write(endpoint.encode() + b"\t" + body + b"\n")
    return path
