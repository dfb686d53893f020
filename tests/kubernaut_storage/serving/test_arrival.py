"""`ArrivingRequest`: when the worker stops reading a request in its loop and hands it to a thread."""

from __future__ import annotations

import pytest

from kubernaut_storage.serving.arrival import MAX_HEAD_BYTES, SMALL_BODY_BYTES, Arrival, ArrivingRequest

WAITING, WHOLE, ENOUGH, TOO_LARGE = (
    Arrival.WAITING,
    Arrival.WHOLE,
    Arrival.ENOUGH_TO_JUDGE,
    Arrival.HEAD_TOO_LARGE,
)
POST = b"POST / HTTP/1.1\r\nHost: x\r\n"


def _arrival(*pieces: bytes) -> Arrival:
    request = ArrivingRequest()
    arrivals = [request.feed(piece) for piece in pieces]
    return arrivals[-1]


@pytest.mark.parametrize(
    ("data", "arrival"),
    [
        (b"GET / HTTP/1.1\r\nHost: x\r\n", WAITING),
        (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", WHOLE),
        (b"GET / HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\n", WHOLE),  # the next one pipelined
        (POST + b"Content-Length: 4\r\n\r\n{}", WAITING),
        (POST + b'Content-Length: 4\r\n\r\n{""}', WHOLE),
        (POST + b"content-length:  4 \r\n\r\n{}", WAITING),
        (POST + b"Transfer-Encoding: chunked\r\n\r\n", WAITING),
        (POST + b"Transfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n", WAITING),
        (POST + b"Transfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n", WAITING),
        (POST + b"Transfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n", WHOLE),
        (POST + b"Transfer-Encoding: chunked\r\n\r\n2;ext=1\r\n{}\r\n0\r\nX-Trailer: a\r\n\r\n", WHOLE),
        (POST + b"Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", WHOLE),
        (POST + b"Transfer-Encoding: chunked\r\n\r\nzz\r\n", ENOUGH),  # the parser refuses the size
        (POST + b"Transfer-Encoding: chunked\r\n\r\n2\r\n{}xx", ENOUGH),  # no CRLF after the data
        (POST + b"Transfer-Encoding: chunked\r\n\r\n" + b"1" * 5000, ENOUGH),
        (POST + b"Transfer-Encoding: gzip\r\n\r\n", ENOUGH),  # 501
        (POST + b"Transfer-Encoding: chunked\r\nContent-Length: 2\r\n\r\n", ENOUGH),  # 400
        (POST + b"Content-Length: 2\r\nContent-Length: 2\r\n\r\n", ENOUGH),
        (POST + b"Content-Length: x\r\n\r\n", ENOUGH),
        (POST + b"Content-Length: -1\r\n\r\n", ENOUGH),
        (POST + b"Expect: something\r\n\r\n", ENOUGH),  # 417
        (POST + b"Content-Length: %d\r\n\r\n" % (SMALL_BODY_BYTES + 10), WAITING),
        (b"GET / HTTP/1.1\r\nX: " + b"a" * MAX_HEAD_BYTES, TOO_LARGE),
        (b"GET / HTTP/1.1\r\nX: " + b"a" * MAX_HEAD_BYTES + b"\r\n\r\n", TOO_LARGE),
        (b"GET / HTTP/1.1\r\nX: " + b"a" * (MAX_HEAD_BYTES - 100) + b"\r\n\r\n", WHOLE),
    ],
)
def test_arrival(data, arrival):
    assert _arrival(data) is arrival


def test_arrival_is_the_same_byte_by_byte():
    data = POST + b"Transfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n"
    request = ArrivingRequest()
    arrivals = [request.feed(data[index : index + 1]) for index in range(len(data))]
    assert arrivals[:-1] == [WAITING] * (len(data) - 1)
    assert arrivals[-1] is WHOLE


def test_a_body_over_the_small_limit_is_judged_from_its_first_bytes():
    head = POST + b"Content-Length: %d\r\n\r\n" % (10 * SMALL_BODY_BYTES)
    assert _arrival(head, b"x" * SMALL_BODY_BYTES) is WAITING
    assert _arrival(head, b"x" * SMALL_BODY_BYTES, b"x") is ENOUGH
    chunked = POST + b"Transfer-Encoding: chunked\r\n\r\n%x\r\n" % (10 * SMALL_BODY_BYTES)
    assert _arrival(chunked, b"x" * (SMALL_BODY_BYTES + 1)) is ENOUGH


def test_expect_100_continue_is_owed_once_and_removed_from_the_head():
    request = ArrivingRequest()
    head = POST + b"Expect: 100-continue\r\nContent-Length: 2\r\n\r\n"
    assert request.feed(head) is WAITING
    assert request.continue_pending
    assert bytes(request.data) == POST + b"Content-Length: 2\r\n\r\n"
    request.continue_pending = False
    assert request.feed(b"{}") is WHOLE
    assert bytes(request.data) == POST + b"Content-Length: 2\r\n\r\n{}"


@pytest.mark.parametrize(
    "head",
    [
        POST + b"Expect: 100-continue\r\nContent-Length: 2\r\n\r\n{}",  # the body came anyway
        POST + b"Expect: 100-continue\r\n\r\n",  # no body at all
        b"POST / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n",  # HTTP/1.0 ignores it
    ],
)
def test_no_100_continue_when_it_is_not_owed(head):
    request = ArrivingRequest()
    request.feed(head)
    assert not request.continue_pending
    assert b"Expect" not in bytes(request.data)


def test_expect_with_a_chunked_body_keeps_its_framing():
    request = ArrivingRequest()
    assert request.feed(POST + b"Expect: 100-continue\r\nTransfer-Encoding: chunked\r\n\r\n") is WAITING
    assert request.continue_pending
    assert request.feed(b"2\r\n{}\r\n0\r\n\r\n") is WHOLE
