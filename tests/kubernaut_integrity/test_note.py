"""Signed notes: Go's known answer, opening against trusted keys, unknown signatures kept,
the format's rules, key encodings and rotation, and byte flips."""

from __future__ import annotations

import base64

import pytest

from kubernaut_integrity.note import (
    MAX_SIGNATURES,
    NoteError,
    Signature,
    note_open,
    note_parse,
    note_sign,
    note_with_signatures,
    signer_from_skey,
    signer_generate,
    verifier_from_vkey,
)
from testutils.mutation import flips_accepted

#: The example of Go's sumdb/note documentation: Ed25519 is deterministic, so the same bytes.
GO_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
GO_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
GO_TEXT = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n"
GO_NOTE = (
    GO_TEXT
    + "\n— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
)


def test_signing_reproduces_the_go_note_example() -> None:
    signer = signer_from_skey(GO_SKEY)
    assert signer.verifier.vkey == GO_VKEY
    assert signer.skey == GO_SKEY
    assert note_sign(GO_TEXT, [signer]).encode() == GO_NOTE.encode()
    opened = note_open(GO_NOTE.encode(), [verifier_from_vkey(GO_VKEY)])
    assert opened.text == GO_TEXT
    assert [s.key for s in opened.verified] == [("PeterNeumann", 0xC74F20A3)]


def test_unknown_signatures_are_kept_and_a_trusted_one_is_enough() -> None:
    log, other = signer_generate("example.com/log"), signer_generate("witness.example/w1")
    note = note_sign("hello\n", [log, other])
    opened = note_open(note.encode(), [log.verifier])
    assert [s.name for s in opened.verified] == ["example.com/log"]
    assert [s.name for s in opened.unverified] == ["witness.example/w1"]
    assert opened.note.encode() == note.encode()


def test_no_signature_by_a_trusted_key_refuses_the_note() -> None:
    note = note_sign("hello\n", [signer_generate("example.com/log")])
    with pytest.raises(NoteError, match="no signature by a trusted key"):
        note_open(note.encode(), [signer_generate("example.com/log").verifier])


def test_a_bad_signature_by_a_trusted_key_refuses_the_note_even_beside_a_good_one() -> None:
    old, new = signer_generate("example.com/log"), signer_generate("example.com/log")
    note = note_sign("hello\n", [old, new])
    forged = Signature(name=old.name, key_hash=old.key_hash, signature=bytes(64))
    tampered = note_with_signatures(note_sign("hello\n", [new]), [forged])
    note_open(note.encode(), [old.verifier, new.verifier])
    with pytest.raises(NoteError, match=r"invalid signature for key example\.com/log"):
        note_open(tampered.encode(), [old.verifier, new.verifier])


def test_a_same_named_key_with_another_hash_is_unknown_not_a_failure() -> None:
    signer = signer_generate("example.com/log")
    impostor = Signature(name=signer.name, key_hash=signer.key_hash ^ 1, signature=bytes(64))
    note = note_with_signatures(note_sign("hello\n", [signer]), [impostor])
    opened = note_open(note.encode(), [signer.verifier])
    assert opened.unverified == (impostor,)


def test_both_keys_sign_during_a_rotation_and_either_alone_verifies() -> None:
    old, new = signer_generate("example.com/log"), signer_generate("example.com/log")
    data = note_sign("size 5\n", [old, new]).encode()
    assert [s.key_hash for s in note_open(data, [old.verifier]).verified] == [old.key_hash]
    assert [s.key_hash for s in note_open(data, [new.verifier]).verified] == [new.key_hash]


def test_resigning_keeps_other_signatures_and_replaces_its_own() -> None:
    log, witness = signer_generate("example.com/log"), signer_generate("witness.example/w1")
    first = note_sign("a\n", [log, witness])
    again = note_sign("a\n", [log], keep=first.signatures)
    assert [s.name for s in again.signatures] == ["witness.example/w1", "example.com/log"]
    assert len(note_parse(again.encode()).signatures) == 2


def test_adding_cosignatures_skips_keys_already_present() -> None:
    log, witness = signer_generate("example.com/log"), signer_generate("witness.example/w1")
    note = note_sign("a\n", [log])
    cosignature = note_sign("a\n", [witness]).signatures[0]
    twice = note_with_signatures(note_with_signatures(note, [cosignature]), [cosignature])
    assert [s.name for s in twice.signatures] == ["example.com/log", "witness.example/w1"]
    note_open(twice.encode(), [log.verifier, witness.verifier])


def _line(name: str = "k", raw: bytes = b"\x00\x00\x00\x01" + bytes(64)) -> str:
    return f"— {name} {base64.b64encode(raw).decode()}\n"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ("text\n" + _line(), "blank line"),
        ("text\n\n" + _line()[:-1], "ends with a signature line"),
        ("te\x07xt\n\n" + _line(), "control characters"),
        ("text\n\n" + _line("bad name"), "not base64"),
        ("text\n\n" + _line("a+b"), "invalid key name"),
        ("text\n\n" + _line(raw=b"\x00\x00\x00\x01"), "too short"),
        ("text\n\n-- k AAAAAQ==\n", "not a signature line"),
        ("text\n\n" + _line().replace("=", ""), "base64"),
        ("text\n\n— k AAAAAR==\n", "not canonical base64"),
        ("text\n\n" + _line() * (MAX_SIGNATURES + 1), f"more than {MAX_SIGNATURES}"),
    ],
)
def test_malformed_notes_are_refused(data: str, message: str) -> None:
    with pytest.raises(NoteError, match=message):
        note_parse(data.encode())


def test_invalid_utf8_is_refused() -> None:
    with pytest.raises(NoteError, match="UTF-8"):
        note_parse(b"\xff\n\n" + _line().encode())


def test_the_text_is_split_from_the_signatures_at_the_last_blank_line() -> None:
    signer = signer_generate("example.com/log")
    text = "first paragraph\n\nsecond paragraph\n"
    assert note_open(note_sign(text, [signer]).encode(), [signer.verifier]).text == text


@pytest.mark.parametrize(
    "vkey",
    [
        GO_VKEY.replace("c74f20a3", "c74f20a4"),
        GO_VKEY.replace("+ARpc", "+AhPc"),
        "PeterNeumann+c74f20a3",
        "Peter Neumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
    ],
)
def test_malformed_or_mismatched_verifier_keys_are_refused(vkey: str) -> None:
    with pytest.raises(NoteError):
        verifier_from_vkey(vkey)


def test_a_signer_key_with_a_wrong_hash_is_refused() -> None:
    with pytest.raises(NoteError, match="does not match"):
        signer_from_skey(GO_SKEY.replace("c74f20a3", "c74f20a4"))


def test_a_text_without_its_final_newline_is_not_signed() -> None:
    with pytest.raises(NoteError, match="ends with a newline"):
        note_sign("no newline", [signer_generate("example.com/log")])


def test_flipping_any_byte_of_a_signed_note_fails() -> None:
    log, witness = signer_generate("example.com/log"), signer_generate("witness.example/w1")
    data = note_sign("example.com/log\n12\nWEKLNmmdA0WC4YIqnSxTyfnR/uuzvPyL/Uy9DH7kXc8=\n", [log, witness]).encode()
    keys = {log.verifier.vkey, witness.verifier.vkey}

    def accepts(candidate: bytes) -> bool:
        try:
            opened = note_open(candidate, [log.verifier, witness.verifier])
        except NoteError:
            return False
        return {verifier_from_vkey(k).key_hash for k in keys} == {s.key_hash for s in opened.verified}

    assert flips_accepted(data, accepts) == []
