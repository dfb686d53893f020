"""Asking a witness to cosign a checkpoint: the client side of C2SP tlog-witness.

    POST <submission prefix>/add-checkpoint

    old <tree size of the checkpoint the witness last cosigned for this origin, 0 if none>
    <the consistency proof from that size, one base64 hash a line; none from size 0>
    <blank line>
    <the checkpoint note>

The witness answers
- 200 with one or more cosignature lines (`cosignature.py`) on the checkpoint;
- 409 Conflict, body `<size>\\n` as text/x.tlog.size: it last cosigned another size. The client
  asks again once, with a proof from that size. A witness size larger than the checkpoint's,
  or a second conflict at the size it named (another root at that size), means the witness
  saw a tree this checkpoint does not extend;
- 422 the consistency proof does not verify against the root it holds: the same verdict;
- 404 unknown origin, 403 no signature by a log key it trusts, 400 a malformed request:
  the witness is not configured for this log, or the request is wrong.

Only the answer's cosignatures by the witness keys we trust are kept; lines of other keys are
ignored, and one of ours that does not verify refuses the whole answer.
"""

from __future__ import annotations

import base64
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from kubernaut_integrity.checkpoint import Checkpoint
from kubernaut_integrity.note import NoteError, Signature, Verifier, note_open

#: The protocol's bound: a consistency proof in a tree of up to 2**63 leaves.
MAX_PROOF_LINES = 63
SIZE_CONTENT_TYPE = "text/x.tlog.size"
#: A cosignature answer is a few lines; anything much larger is not one.
_MAX_ANSWER_BYTES = 64 * 1024
#: The first request, and one retry per 409 naming a new size; a single log writer needs one.
_ATTEMPTS = 3


class WitnessError(Exception):
    """The witness did not cosign. `status` is its HTTP status, None when it was not reached."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class WitnessUnavailableError(WitnessError):
    """Not reached, or a server error: try again later; it delays the cosignature, nothing else."""


class WitnessRefusedError(WitnessError):
    """404, 403, 400 or an unusable answer: the witness or our configuration of it is wrong."""


class WitnessInconsistentError(WitnessError):
    """The witness holds a tree this checkpoint does not extend: a fork or a rewrite of history."""


def add_checkpoint_body(*, old_size: int, proof: Sequence[bytes], note: bytes) -> bytes:
    if old_size < 0 or (old_size == 0 and proof) or len(proof) > MAX_PROOF_LINES:
        raise ValueError(f"no add-checkpoint request from size {old_size} with {len(proof)} proof hashes")
    lines = [f"old {old_size}", *(base64.b64encode(h).decode() for h in proof), ""]
    return "".join(line + "\n" for line in lines).encode() + note


def cosignatures_parse(answer: bytes, *, text: str, verifiers: Iterable[Verifier]) -> tuple[Signature, ...]:
    """The cosignatures of a 200 answer by the trusted witness keys, checked over `text`."""
    try:
        opened = note_open(text.encode() + b"\n" + answer, verifiers)
    except NoteError as error:
        raise WitnessRefusedError(f"answer without a valid cosignature: {error}", status=200) from error
    return opened.verified


@dataclass(frozen=True, slots=True)
class Cosigned:
    """The witness's cosignatures, and the old size it accepted (where the next request starts)."""

    signatures: tuple[Signature, ...]
    old_size: int


@dataclass(frozen=True, slots=True)
class _Answer:
    status: int
    content_type: str
    body: bytes


def _post(url: str, body: bytes, timeout: float) -> _Answer:
    request = urllib.request.Request(  # noqa: S310 - the operator configures an http(s) witness URL
        url, data=body, method="POST", headers={"Content-Type": "text/plain; charset=utf-8"}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            return _Answer(response.status, response.headers.get_content_type(), response.read(_MAX_ANSWER_BYTES))
    except urllib.error.HTTPError as error:
        with error:
            return _Answer(error.code, error.headers.get_content_type(), error.read(_MAX_ANSWER_BYTES))
    except (urllib.error.URLError, OSError) as error:
        raise WitnessUnavailableError(f"witness {url} not reached: {error}") from error


def _conflict_size(answer: _Answer) -> int | None:
    text = answer.body.decode("ascii", errors="replace")
    if answer.content_type != SIZE_CONTENT_TYPE or not text.endswith("\n") or not text[:-1].isdigit():
        return None
    return int(text[:-1])


def witness_cosign(
    *,
    url: str,
    note: bytes,
    checkpoint: Checkpoint,
    old_size: int,
    proof_from: Callable[[int], Sequence[bytes]],
    verifiers: Iterable[Verifier],
    timeout: float,
) -> Cosigned:
    """Ask the witness at `url` (its submission prefix) to cosign `note`, the signed `checkpoint`.

    `old_size` is the size this witness last cosigned, as far as we know (0 when unknown);
    `proof_from(size)` gives the consistency proof from `size` to the checkpoint's size.
    """
    endpoint = url.rstrip("/") + "/add-checkpoint"
    trusted = list(verifiers)
    for _ in range(_ATTEMPTS):
        proof = proof_from(old_size) if 0 < old_size < checkpoint.size else []
        answer = _post(endpoint, add_checkpoint_body(old_size=old_size, proof=proof, note=note), timeout)
        if answer.status == 200:
            return Cosigned(cosignatures_parse(answer.body, text=checkpoint.body, verifiers=trusted), old_size)
        if answer.status != 409:
            break
        witness_size = _conflict_size(answer)
        if witness_size is None or witness_size == old_size:
            raise WitnessInconsistentError(
                f"witness {url} holds another root at size {old_size} than checkpoint {checkpoint.size} extends",
                status=409,
            )
        if witness_size > checkpoint.size:
            raise WitnessInconsistentError(
                f"witness {url} cosigned size {witness_size}, beyond checkpoint size {checkpoint.size}",
                status=409,
            )
        old_size = witness_size
    else:
        raise WitnessUnavailableError(
            f"witness {url}: its size kept changing; another client submits checkpoints of this origin", status=409
        )
    if answer.status == 422:
        raise WitnessInconsistentError(
            f"witness {url}: checkpoint {checkpoint.size} is not consistent with the size {old_size} it holds",
            status=422,
        )
    reason = answer.body[:200].decode("utf-8", errors="replace").strip()
    if answer.status in (400, 403, 404):
        meaning = {400: "malformed request", 403: "no signature by a log key it trusts", 404: "unknown origin"}
        raise WitnessRefusedError(
            f"witness {url}: {answer.status} {meaning[answer.status]}: {reason}", status=answer.status
        )
    raise WitnessUnavailableError(f"witness {url}: {answer.status}: {reason}", status=answer.status)
