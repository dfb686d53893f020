"""RFC 3161 anchors of a checkpoint from a real authority (`openssl ts`): request, fetch,
verification against the root, the cross-check with `openssl ts -verify`, and what a changed
byte of the answer does."""

from __future__ import annotations

import datetime as dt
import hashlib
import socket
from pathlib import Path

import pytest

from kubernaut_integrity.timestamps import (
    TimeAnchor,
    TimestampError,
    timestamp_fetch,
    timestamp_query,
    timestamp_verify,
    tsa_roots_load,
)
from testutils.mutation import flipped, flips_accepted
from testutils.tsa import TimestampAuthority

BODY = b"audit.example/kubernaut\n40\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"


def _anchor(authority: TimestampAuthority, body: bytes = BODY) -> tuple[bytes, int]:
    query = timestamp_query(body)
    return timestamp_fetch(url=authority.url, query=query, timeout=10), query.nonce


def test_a_checkpoint_is_anchored_and_the_anchor_verifies(time_stamp_authority: TimestampAuthority) -> None:
    before = dt.datetime.now(dt.UTC).replace(microsecond=0)
    response, nonce = _anchor(time_stamp_authority)
    anchor = timestamp_verify(
        response=response, body=BODY, roots=tsa_roots_load([time_stamp_authority.ca_pem]), nonce=nonce
    )
    assert anchor.imprint == hashlib.sha256(BODY).digest()
    assert before - dt.timedelta(seconds=1) <= anchor.gen_time <= dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1)
    assert anchor.gen_time.tzinfo is not None


def test_openssl_verifies_our_anchors_too(time_stamp_authority: TimestampAuthority) -> None:
    response, _ = _anchor(time_stamp_authority)
    done = time_stamp_authority.openssl_verify(response, BODY)
    assert done.returncode == 0, done.stderr
    assert b"Verification: OK" in done.stdout
    assert time_stamp_authority.openssl_verify(response, BODY + b"x").returncode != 0


def test_an_anchor_of_another_checkpoint_is_refused(time_stamp_authority: TimestampAuthority) -> None:
    response, _ = _anchor(time_stamp_authority)
    roots = tsa_roots_load([time_stamp_authority.ca_pem])
    with pytest.raises(TimestampError, match="imprint is not SHA-256 of the checkpoint"):
        timestamp_verify(response=response, body=BODY.replace(b"40", b"41"), roots=roots)


def test_an_anchor_answering_another_request_is_refused(time_stamp_authority: TimestampAuthority) -> None:
    response, nonce = _anchor(time_stamp_authority)
    with pytest.raises(TimestampError, match="Nonce"):
        timestamp_verify(
            response=response, body=BODY, roots=tsa_roots_load([time_stamp_authority.ca_pem]), nonce=nonce + 1
        )


def test_an_anchor_from_an_untrusted_authority_is_refused(
    time_stamp_authority: TimestampAuthority, tmp_path: Path
) -> None:
    response, _ = _anchor(time_stamp_authority)
    with TimestampAuthority(tmp_path / "other") as other, pytest.raises(TimestampError, match="does not verify"):
        timestamp_verify(response=response, body=BODY, roots=tsa_roots_load([other.ca_pem]))
    with pytest.raises(TimestampError, match="no trusted"):
        timestamp_verify(response=response, body=BODY, roots=[])


def test_an_unreachable_authority_is_an_error_not_a_hang() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(TimestampError, match="time-stamp authority"):
        timestamp_fetch(url=f"http://127.0.0.1:{port}/", query=timestamp_query(BODY), timeout=2)


def test_no_changed_byte_of_an_anchor_changes_what_it_states(time_stamp_authority: TimestampAuthority) -> None:
    """Flipping a byte of the imprint always fails. CMS leaves a few bytes outside the
    signature (version numbers, the signer's algorithm identifier) that both rfc3161-client
    and `openssl ts -verify` accept when changed; the anchor they still yield must then be
    the very same statement."""
    response, _ = _anchor(time_stamp_authority)
    roots = tsa_roots_load([time_stamp_authority.ca_pem])
    original = timestamp_verify(response=response, body=BODY, roots=roots)
    statements: list[TimeAnchor] = []

    def accepts(candidate: bytes) -> bool:
        try:
            statements.append(timestamp_verify(response=candidate, body=BODY, roots=roots))
        except TimestampError:
            return False
        return True

    imprint_at = response.index(original.imprint)
    assert flips_accepted(response, accepts, positions=range(imprint_at, imprint_at + 32)) == []
    accepted = flips_accepted(response, accepts, masks=(0x01,))
    assert len(accepted) <= 16, accepted
    assert all(statement == original for statement in statements)
    for position, mask in accepted:
        assert time_stamp_authority.openssl_verify(flipped(response, position, mask), BODY).returncode == 0
