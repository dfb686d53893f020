"""How much of a request has arrived: whether a thread could serve it without waiting on the client.

The worker (kubernaut_storage/serving/worker.py) reads each request in its event loop and feeds
the bytes to an `ArrivingRequest`, which answers after every read:

* WAITING: the head or the body is still incomplete;
* WHOLE: the head and the whole body are here (a Content-Length body, or a chunked one down to
  its last chunk and trailers): a thread can serve the request from memory;
* ENOUGH_TO_JUDGE: the head and more than SMALL_BODY_BYTES of body, or a head the parser will
  refuse on its own (conflicting lengths, an unknown expectation or transfer coding): every
  endpoint answers such a request from what is here (413, 400 ...), and the connection closes
  after the answer instead of reading the rest;
* HEAD_TOO_LARGE: more than MAX_HEAD_BYTES without the empty line that ends a head: answered 431.

`Expect: 100-continue` is answered here (the worker sends the interim response) and removed from
the head, so the body arrives like any other; the parser, which would send it again, never
sees it. The framing read here only decides when to stop waiting: gunicorn's parser still
parses the request, and where the two would disagree the thread's reads still end by the
connection's deadline.
"""

from __future__ import annotations

import enum
import re

# Every audit record and batch fits (AUDIT_MAX_BODY_BYTES is 1 MiB by default), and an endpoint
# refusing a larger body decides on its first SMALL_BODY_BYTES + 1 bytes.
SMALL_BODY_BYTES = 1024 * 1024
# gunicorn's own limits (100 fields of 8190 bytes) would let a head grow to ~800 KiB.
MAX_HEAD_BYTES = 64 * 1024
# A chunk-size line with its extensions, or one trailer field.
_MAX_CHUNK_LINE_BYTES = 4096

CONTINUE_RESPONSE = b"HTTP/1.1 100 Continue\r\n\r\n"

_END_OF_HEAD = b"\r\n\r\n"
_DIGITS = re.compile(rb"[0-9]{1,18}")
_HEX_DIGITS = re.compile(rb"[0-9A-Fa-f]{1,15}")


class Arrival(enum.Enum):
    WAITING = "waiting"
    WHOLE = "whole"
    ENOUGH_TO_JUDGE = "enough_to_judge"
    HEAD_TOO_LARGE = "head_too_large"


class _Chunks(enum.Enum):
    SIZE_LINE = "size_line"
    DATA = "data"
    TRAILER = "trailer"


class ArrivingRequest:
    """The bytes of one request as they arrive (and of any pipelined after it)."""

    def __init__(self) -> None:
        self.data = bytearray()
        #: Set when the head asked for `100 Continue` and the worker has not sent it yet.
        self.continue_pending = False
        self._body_start = -1
        self._content_length = 0
        self._chunked = False
        self._chunk_phase = _Chunks.SIZE_LINE
        self._chunk_position = 0
        self._chunk_remaining = 0

    def feed(self, chunk: bytes) -> Arrival:
        searched_to = max(0, len(self.data) - len(_END_OF_HEAD) + 1)
        self.data += chunk
        if self._body_start < 0:
            end = self.data.find(_END_OF_HEAD, searched_to)
            if end < 0:
                return Arrival.HEAD_TOO_LARGE if len(self.data) > MAX_HEAD_BYTES else Arrival.WAITING
            if end + len(_END_OF_HEAD) > MAX_HEAD_BYTES:
                return Arrival.HEAD_TOO_LARGE
            self._body_start = end + len(_END_OF_HEAD)
            if not self._read_head():
                return Arrival.ENOUGH_TO_JUDGE
        return self._body_arrival()

    def _read_head(self) -> bool:
        """Take the body's framing from the head; False for a head the parser refuses anyway."""
        lines = bytes(self.data[: self._body_start - len(_END_OF_HEAD)]).split(b"\r\n")
        http11 = lines[0].endswith(b" HTTP/1.1")
        lengths: list[bytes] = []
        codings: list[bytes] = []
        expect_line = -1
        for index, line in enumerate(lines[1:], start=1):
            name, _, value = line.partition(b":")
            name, value = name.strip().lower(), value.strip()
            if name == b"content-length":
                lengths.append(value)
            elif name == b"transfer-encoding":
                codings += [coding.strip().lower() for coding in value.split(b",")]
            elif name == b"expect":
                if value.lower() != b"100-continue" or expect_line >= 0:
                    return False  # 417
                expect_line = index
        if codings:
            if lengths or codings[-1] != b"chunked":
                return False  # 400 (both framings) or 501 (no chunked framing)
            self._chunked = True
            self._chunk_position = self._body_start
        elif lengths:
            if len(lengths) > 1 or not _DIGITS.fullmatch(lengths[0]):
                return False
            self._content_length = int(lengths[0])
        if expect_line >= 0:
            self._drop_head_line(lines, expect_line)
            # HTTP/1.0 clients cannot expect it (RFC 9110, 10.1.1); nor is it owed once the body
            # has started or when there is none.
            body_expected = self._chunked or self._content_length > 0
            self.continue_pending = http11 and body_expected and len(self.data) == self._body_start
        return True

    def _drop_head_line(self, lines: list[bytes], index: int) -> None:
        removed = len(lines[index]) + 2
        start = sum(len(line) + 2 for line in lines[:index])
        del self.data[start : start + removed]
        self._body_start -= removed
        if self._chunked:
            self._chunk_position = self._body_start

    def _body_arrival(self) -> Arrival:
        if self._chunked:
            arrival = self._chunks_arrival()
        elif len(self.data) - self._body_start >= self._content_length:
            arrival = Arrival.WHOLE
        else:
            arrival = Arrival.WAITING
        if arrival is Arrival.WAITING and len(self.data) - self._body_start > SMALL_BODY_BYTES:
            return Arrival.ENOUGH_TO_JUDGE
        return arrival

    def _chunks_arrival(self) -> Arrival:
        """Follow the chunked framing as far as it has arrived (resuming where it stopped).

        A framing error ends the wait as well: the parser answers it 400 from what is here.
        """
        data = self.data
        while True:
            position = self._chunk_position
            if self._chunk_phase is _Chunks.DATA:
                end = position + self._chunk_remaining
                if len(data) < end + 2:
                    return Arrival.WAITING
                if data[end : end + 2] != b"\r\n":
                    return Arrival.ENOUGH_TO_JUDGE
                self._chunk_position = end + 2
                self._chunk_phase = _Chunks.SIZE_LINE
                continue
            line_end = data.find(b"\r\n", position)
            if line_end < 0:
                too_long = len(data) - position > _MAX_CHUNK_LINE_BYTES
                return Arrival.ENOUGH_TO_JUDGE if too_long else Arrival.WAITING
            self._chunk_position = line_end + 2
            if self._chunk_phase is _Chunks.TRAILER:
                if line_end == position:
                    return Arrival.WHOLE  # the empty line after the trailers
                continue
            size = bytes(data[position:line_end]).partition(b";")[0].strip()
            if not _HEX_DIGITS.fullmatch(size):
                return Arrival.ENOUGH_TO_JUDGE
            self._chunk_remaining = int(size, 16)
            self._chunk_phase = _Chunks.DATA if self._chunk_remaining else _Chunks.TRAILER
