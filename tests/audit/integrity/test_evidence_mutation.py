"""The mutation suite: one byte flipped anywhere in any component of a real evidence bundle — a
record's line, a proof, an index, a tree size, a root, a seal body, a signature, a cosignature,
a time-stamp token's imprint — makes the offline check fail. A property test per component over
random positions and masks, so every component is hit on every run.

Text members are flipped in the bundle file itself, within the member's JSON text (the file an
auditor is handed); binary members (base64 in the file) in their decoded bytes, re-encoded."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kubernaut_integrity.evidence import evidence_dumps
from kubernaut_integrity.evidence_verification import evidence_check
from kubernaut_integrity.note import SIGNATURE_PREFIX
from kubernaut_integrity.timestamps import timestamp_verify
from testutils.evidence import EvidenceCase
from testutils.mutation import flipped

# The bundle's rows are made in a module fixture; the test database must exist for it.
pytestmark = pytest.mark.django_db

#: A mutant: (the bundle, a position, a mask) -> the changed file.
Mutant = Callable[[dict[str, Any], int, int], bytes]
_MARK = "@@mutation@@"


def _at(bundle: dict[str, Any], path: tuple[Any, ...]) -> Any:
    value: Any = bundle
    for step in path:
        value = value[step]
    return value


def _set(bundle: dict[str, Any], path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    changed = json.loads(json.dumps(bundle))
    _at(changed, path[:-1])[path[-1]] = value
    return changed


def _text_span(path: tuple[Any, ...], start: int = 0, end: int | None = None) -> Mutant:
    """Flips of the file's bytes encoding characters [start, end) of a string member."""

    def size_of(bundle: dict[str, Any]) -> tuple[int, int]:
        text = _at(bundle, path)
        stop = len(text) if end is None else end
        low = len(json.dumps(text[:start], ensure_ascii=False).encode()) - 1
        high = len(json.dumps(text[:stop], ensure_ascii=False).encode()) - 1
        return low, high

    def mutant(bundle: dict[str, Any], position: int, mask: int) -> bytes:
        low, high = size_of(bundle)
        data = evidence_dumps(_set(bundle, path, _MARK))
        encoded = json.dumps(_at(bundle, path), ensure_ascii=False).encode()
        changed = flipped(encoded, low + position % (high - low), mask)
        return data.replace(json.dumps(_MARK).encode(), changed, 1)

    return mutant


def _number(path: tuple[Any, ...]) -> Mutant:
    """Flips of the digits of a number member, whatever they become in the file."""

    def mutant(bundle: dict[str, Any], position: int, mask: int) -> bytes:
        digits = str(_at(bundle, path)).encode()
        data = evidence_dumps(_set(bundle, path, _MARK))
        return data.replace(json.dumps(_MARK).encode(), flipped(digits, position % len(digits), mask), 1)

    return mutant


def _decoded(path: tuple[Any, ...], span: Callable[[bytes], tuple[int, int]] | None = None) -> Mutant:
    """Flips of the decoded bytes of a base64 member (within `span` of them, when given)."""

    def mutant(bundle: dict[str, Any], position: int, mask: int) -> bytes:
        raw = base64.b64decode(_at(bundle, path))
        low, high = span(raw) if span is not None else (0, len(raw))
        changed = flipped(raw, low + position % (high - low), mask)
        return evidence_dumps(_set(bundle, path, base64.b64encode(changed).decode()))

    return mutant


def _note_signature(path: tuple[Any, ...], line_number: int) -> Mutant:
    """Flips of the decoded key hash and signature of one signature line of a checkpoint note."""

    def mutant(bundle: dict[str, Any], position: int, mask: int) -> bytes:
        text, _, signatures = _at(bundle, path).rpartition("\n\n")
        lines = signatures.split("\n")
        name, _, encoded = lines[line_number][len(SIGNATURE_PREFIX) :].partition(" ")
        raw = base64.b64decode(encoded)
        changed = base64.b64encode(flipped(raw, position % len(raw), mask)).decode()
        lines[line_number] = f"{SIGNATURE_PREFIX}{name} {changed}"
        return evidence_dumps(_set(bundle, path, text + "\n\n" + "\n".join(lines)))

    return mutant


def _signature_lines(note: str, *, witness: bool) -> list[int]:
    lines = note.rpartition("\n\n")[2].split("\n")
    return [
        number for number, line in enumerate(lines) if line and line.startswith(SIGNATURE_PREFIX + "witness") == witness
    ]


def _line_span(text: str, number: int) -> tuple[int, int]:
    """Characters of line `number` of a text."""
    start = 0
    for _ in range(number):
        start = text.index("\n", start) + 1
    return start, text.index("\n", start)


def _body_spans(body: str, pattern: str) -> list[tuple[int, int]]:
    """Characters of each value after `pattern` in a seal body (a count or a root)."""
    spans, start = [], 0
    while (found := body.find(pattern, start)) >= 0:
        value = found + len(pattern)
        end = value
        while body[end] not in ",}":
            end += 1
        spans.append((value, end))
        start = end
    return spans


def _imprint(bundle: dict[str, Any], size: int) -> Callable[[bytes], tuple[int, int]]:
    note = next(entry["note"] for entry in bundle["checkpoints"] if entry["note"].split("\n")[1] == str(size))
    digest = hashlib.sha256(note.rpartition("\n\n")[0].encode() + b"\n").digest()

    def span(token: bytes) -> tuple[int, int]:
        start = token.index(digest)
        return start, start + len(digest)

    return span


def mutants(bundle: dict[str, Any]) -> dict[str, list[Mutant]]:
    """Every component's places to flip, by component."""
    records, seals, checkpoints = bundle["records"], bundle["seals"], bundle["checkpoints"]
    proofs = [("records", r, "proof", h) for r, record in enumerate(records) for h in range(len(record["proof"]))] + [
        ("seals", s, "proof", h) for s, seal in enumerate(seals) for h in range(len(seal["proof"]))
    ]
    proofs += [
        ("checkpoints", c, "proof", h) for c, entry in enumerate(checkpoints) for h in range(len(entry["proof"]))
    ]
    proofs += [
        ("consistency", c, "proof", h)
        for c, entry in enumerate(bundle["consistency"])
        for h in range(len(entry["proof"]))
    ]
    sizes = [
        _text_span(("checkpoints", c, "note"), *_line_span(entry["note"], 1)) for c, entry in enumerate(checkpoints)
    ]
    sizes += [
        _text_span(("seals", s, "body"), *span)
        for s, seal in enumerate(seals)
        for span in _body_spans(seal["body"], '"count":') + _body_spans(seal["body"], '"sequence":')
    ]
    roots = [
        _text_span(("checkpoints", c, "note"), *_line_span(entry["note"], 2)) for c, entry in enumerate(checkpoints)
    ]
    roots += [
        _text_span(("seals", s, "body"), *span)
        for s, seal in enumerate(seals)
        for span in _body_spans(seal["body"], '"root":')
    ]
    signatures = [_decoded(("seals", s, "signature")) for s in range(len(seals))]
    signatures += [
        _note_signature(("checkpoints", c, "note"), number)
        for c, entry in enumerate(checkpoints)
        for number in _signature_lines(entry["note"], witness=False)
    ]
    cosignatures = [
        _note_signature(("checkpoints", c, "note"), number)
        for c, entry in enumerate(checkpoints)
        for number in _signature_lines(entry["note"], witness=True)
    ]
    imprints = [
        _decoded(("anchors", a, "token"), _imprint(bundle, anchor["checkpoint"]))
        for a, anchor in enumerate(bundle["anchors"])
    ]
    return {
        "line": [_text_span(("records", r, "line")) for r in range(len(records))],
        "proof": [_decoded(path) for path in proofs],
        "index": [_number(("records", r, "index")) for r in range(len(records))],
        "size": sizes,
        "root": roots,
        "seal body": [_text_span(("seals", s, "body")) for s in range(len(seals))],
        "signature": signatures,
        "cosignature": cosignatures,
        "token imprint": imprints,
    }


def _accepted(case: EvidenceCase, data: bytes) -> bool:
    return evidence_check(data, keys=case.history.auditor_keys(), held=[case.kept_checkpoint]).clean


def test_the_unchanged_bundle_is_clean_and_every_component_is_there(evidence_case: EvidenceCase) -> None:
    report = evidence_check(
        evidence_case.bundle, keys=evidence_case.history.auditor_keys(), held=[evidence_case.kept_checkpoint]
    )
    assert report.clean, [str(verdict) for verdict in report.verdicts]
    found = mutants(json.loads(evidence_case.bundle))
    assert all(found.values()), {component: len(places) for component, places in found.items()}
    # The bundle really holds several of each: two runs' seals, checkpoints, anchors, a cosignature.
    assert len(found["cosignature"]) >= 1
    assert len(found["token imprint"]) >= 2
    assert len(found["line"]) == 10


def test_the_imprint_located_is_the_one_the_token_states(evidence_case: EvidenceCase) -> None:
    """The mutants flip the bytes the anchor's verification reads as its imprint."""
    bundle = json.loads(evidence_case.bundle)
    anchor = bundle["anchors"][0]
    token = base64.b64decode(anchor["token"])
    start, end = _imprint(bundle, anchor["checkpoint"])(token)
    note = next(
        entry["note"] for entry in bundle["checkpoints"] if entry["note"].split("\n")[1] == str(anchor["checkpoint"])
    )
    body = note.rpartition("\n\n")[0].encode() + b"\n"
    stated = timestamp_verify(response=token, body=body, roots=evidence_case.history.auditor_keys().tsa_roots)
    assert token[start:end] == stated.imprint


COMPONENTS = ["line", "proof", "index", "size", "root", "seal body", "signature", "cosignature", "token imprint"]


@pytest.mark.parametrize("component", COMPONENTS)
@settings(max_examples=40, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(choice=st.integers(0, 10_000), position=st.integers(0, 100_000), mask=st.integers(1, 255))
def test_a_flipped_byte_fails_the_check(
    evidence_case: EvidenceCase, component: str, choice: int, position: int, mask: int
) -> None:
    bundle = json.loads(evidence_case.bundle)
    places = mutants(bundle)[component]
    mutated = places[choice % len(places)](bundle, position, mask)
    assert mutated != evidence_case.bundle
    assert not _accepted(evidence_case, mutated), (component, choice % len(places), position, mask)
