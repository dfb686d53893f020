"""RFC 3161 time anchors: an authority's signed statement that a checkpoint existed at a time.

The request asks for the SHA-256 of the checkpoint's note text (its body, without
signatures), with a random nonce and certReq set, so the answer carries the authority's
certificate. The answer (the whole TimeStampResp, DER) is what is stored: a verifier holding
only the authority's root certificate checks it offline, with this module or with
`openssl ts -verify -in <answer> -data <checkpoint body> -CAfile <root>`.

A verified anchor proves the checkpoint's tree, and so every seal under it, existed no later
than genTime: a rewrite after that instant cannot carry the anchor along.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import urllib.error
import urllib.request
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from rfc3161_client import (
    HashAlgorithm,
    PKIStatus,
    TimestampRequestBuilder,
    VerificationError,
    VerifierBuilder,
    decode_timestamp_response,
)

SHA256_OID = x509.ObjectIdentifier("2.16.840.1.101.3.4.2.1")
QUERY_CONTENT_TYPE = "application/timestamp-query"
REPLY_CONTENT_TYPE = "application/timestamp-reply"
#: A response with its certificates is a few kilobytes.
_MAX_RESPONSE_BYTES = 256 * 1024


class TimestampError(Exception):
    """No anchor: the authority was not reached, refused, or its answer does not verify."""


@dataclass(frozen=True, slots=True)
class TimestampQuery:
    der: bytes
    nonce: int


def timestamp_query(body: bytes) -> TimestampQuery:
    """A TimeStampReq for SHA-256(body), with a nonce and certReq."""
    request = TimestampRequestBuilder(data=body, hash_algorithm=HashAlgorithm.SHA256, nonce=True, cert_req=True).build()
    if request.nonce is None:
        raise TimestampError("the request was built without a nonce")
    return TimestampQuery(der=request.as_bytes(), nonce=request.nonce)


def timestamp_fetch(*, url: str, query: TimestampQuery, timeout: float) -> bytes:
    """The authority's TimeStampResp (DER) to `query`; raises TimestampError."""
    request = urllib.request.Request(  # noqa: S310 - the operator configures an http(s) authority URL
        url, data=query.der, method="POST", headers={"Content-Type": QUERY_CONTENT_TYPE}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            content_type = response.headers.get_content_type()
            answer: bytes = response.read(_MAX_RESPONSE_BYTES)
    except (urllib.error.URLError, OSError) as error:
        raise TimestampError(f"time-stamp authority {url}: {error}") from error
    if content_type != REPLY_CONTENT_TYPE:
        raise TimestampError(f"time-stamp authority {url} answered {content_type}, not {REPLY_CONTENT_TYPE}")
    return answer


@dataclass(frozen=True, slots=True)
class TimeAnchor:
    """What a verified answer states: the time, the SHA-256 it covers, the authority's serial."""

    gen_time: dt.datetime
    imprint: bytes
    serial_number: int


def tsa_roots_load(paths: Iterable[Path]) -> list[x509.Certificate]:
    """The trusted authorities' root certificates, from PEM files (several certificates a file)."""
    roots: list[x509.Certificate] = []
    for path in paths:
        roots.extend(x509.load_pem_x509_certificates(path.read_bytes()))
    return roots


def timestamp_verify(
    *, response: bytes, body: bytes, roots: Sequence[x509.Certificate], nonce: int | None = None
) -> TimeAnchor:
    """Check an answer: granted, signed by a time-stamping certificate chaining to `roots`,
    for SHA-256(body) (and `nonce`, when given). Raises TimestampError."""
    if not roots:
        raise TimestampError("no trusted time-stamp authority root")
    digest = hashlib.sha256(body).digest()
    try:
        decoded = decode_timestamp_response(response)
        status, info = decoded.status, decoded.tst_info
        algorithm, imprint = info.message_imprint.hash_algorithm, info.message_imprint.message
    except ValueError as error:
        raise TimestampError(f"not a time-stamp response: {error}") from error
    if status != PKIStatus.GRANTED:
        raise TimestampError(f"the authority did not grant the time-stamp (status {status})")
    if algorithm != SHA256_OID:
        raise TimestampError(f"the time-stamp is over {algorithm.dotted_string}, not SHA-256")
    if imprint != digest:
        raise TimestampError("the time-stamp is for other data: its imprint is not SHA-256 of the checkpoint")
    builder = VerifierBuilder(roots=list(roots), nonce=nonce)
    try:
        builder.build().verify(decoded, digest)
    except (VerificationError, ValueError) as error:
        raise TimestampError(f"the time-stamp does not verify: {error}") from error
    return TimeAnchor(gen_time=info.gen_time.astimezone(dt.UTC), imprint=imprint, serial_number=info.serial_number)
