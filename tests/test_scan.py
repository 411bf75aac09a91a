"""The shared JSON scanner (drbfast/_scan.pxd) as each caller uses it.

The classifier and the book read JSON with the same inline primitives but keep their own
rules for what lies past the scanner's limits; these tests pin both rules (they held
before the two scanners were merged, and must hold after), the one definition of the
enums and of the notification prefix.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import drbfast
from drbfast import _kinds, kinds
from drbfast._book import OrderBook
from drbfast._classify import classify, classify_lane
from drbfast.book import BookStatus
from drbfast.frames import NOTIFICATION_PREFIX
from drbfast.kinds import Kind, Lane

CH = "book.BTC-PERPETUAL.100ms"
SNAP_DATA = b'"data":{"type":"snapshot","change_id":1,"bids":[["new",1.0,1.0]],"asks":[]}'


def nest(levels: int, inner: bytes = b"") -> bytes:
    return b"[" * levels + inner + b"]" * levels


# ---------------------------------------------------------------- depth rules

@pytest.mark.parametrize("levels, inner, kind", [
    (256, b"1", Kind.OTHER),     # 256 open non-empty arrays: read
    (257, b"1", Kind.UNKNOWN),   # one more: deferred to the oracle
    (257, b"", Kind.OTHER),      # an empty innermost array never counts
    (258, b"", Kind.UNKNOWN),
])
def test_classifier_defers_past_256_open_containers(levels: int, inner: bytes, kind: Kind) -> None:
    assert classify(b'{"a":' + nest(levels, inner) + b"}") is kind


@pytest.mark.parametrize("levels, inner, status", [
    (255, b"1", BookStatus.SNAPSHOT),
    (255, b"", BookStatus.SNAPSHOT),
    (256, b"", BookStatus.PARSE_ERROR),   # the book counts an empty container too
    (256, b"1", BookStatus.PARSE_ERROR),
])
def test_book_refuses_a_skipped_value_nested_256_deep(levels: int, inner: bytes, status: BookStatus) -> None:
    raw = NOTIFICATION_PREFIX + CH.encode() + b'","x":' + nest(levels, inner) + b"," + SNAP_DATA + b"}}"
    assert OrderBook(CH).apply(raw) is status


@pytest.mark.parametrize("digits, kind, status", [
    (4300, Kind.OTHER, BookStatus.SNAPSHOT),
    (4301, Kind.UNKNOWN, BookStatus.PARSE_ERROR),   # Python refuses such an int
])
def test_long_integers_deferred_or_refused(digits: int, kind: Kind, status: BookStatus) -> None:
    big = b"9" * digits
    assert classify(b'{"a":[' + big + b"]}") is kind
    assert classify(b'{"a":[' + big + b".5]}") is Kind.OTHER    # a float of any length is fine
    raw = NOTIFICATION_PREFIX + CH.encode() + b'","x":[' + big + b"]," + SNAP_DATA + b"}}"
    assert OrderBook(CH).apply(raw) is status


@pytest.mark.parametrize("value, ok", [
    (b'"plain ascii run longer than eight bytes"', True),
    (b'"caf\xc3\xa9 \\u00e9 \\n and more plain text after"', True),
    (b'"\xe2\x82\xac\xf0\x9f\x98\x80 four-byte and three-byte UTF-8"', True),
    (b'"overlong \xc0\xaf"', False),
    (b'"surrogate \xed\xa0\x80 encoded"', False),
    (b'"above U+10FFFF \xf4\x90\x80\x80"', False),
    (b'"raw control \x01 byte"', False),
    (b'"bad escape \\x"', False),
    (b'"truncated \\u12"', False),
    (b'"unterminated plain text, longer than eight', False),
])
def test_strings_validated_alike_by_both(value: bytes, ok: bool) -> None:
    # classifier: a skipped member of an object in no production layout
    assert classify(b'{"x":' + value + b',"method":"heartbeat","params":{"type":"heartbeat"}}') is (
        Kind.HEARTBEAT if ok else Kind.OTHER)
    # book: a skipped member of params
    raw = NOTIFICATION_PREFIX + CH.encode() + b'","x":' + value + b"," + SNAP_DATA + b"}}"
    assert OrderBook(CH).apply(raw) is (BookStatus.SNAPSHOT if ok else BookStatus.PARSE_ERROR)


# ---------------------------------------------------------------- one definition

def test_the_enums_are_the_compiled_ones_with_the_published_numbers() -> None:
    assert kinds.Kind is _kinds.Kind and kinds.Lane is _kinds.Lane and drbfast.Kind is Kind
    assert [(m.name, int(m)) for m in Kind] == [
        ("OTHER", 0), ("HEARTBEAT", 1), ("TEST_REQUEST", 2), ("TEST_REPLY", 3), ("UNKNOWN", 4)]
    assert [(m.name, int(m)) for m in Lane] == [
        ("UNKNOWN", 0), ("PRIORITY", 1), ("ORDERED", 2), ("CONFLATE", 3), ("BOOK", 4)]


def test_kinds_stub_declares_every_member() -> None:
    tree = ast.parse((Path(_kinds.__file__).parent / "_kinds.pyi").read_text())
    declared = {node.name: {t.id for n in node.body if isinstance(n, ast.Assign) for t in n.targets
                            if isinstance(t, ast.Name)}
                for node in tree.body if isinstance(node, ast.ClassDef)}
    assert declared == {"Kind": set(Kind.__members__), "Lane": set(Lane.__members__)}


def test_notification_prefix_is_what_the_encoder_writes_and_what_both_read() -> None:
    assert NOTIFICATION_PREFIX == b'{"jsonrpc":"2.0","method":"subscription","params":{"channel":"'
    assert classify_lane(NOTIFICATION_PREFIX + b'ticker.BTC-PERPETUAL.raw","data":{}}}') == (
        Kind.OTHER, Lane.CONFLATE, "ticker.BTC-PERPETUAL.raw")
    assert OrderBook(CH).apply(NOTIFICATION_PREFIX + CH.encode() + b'",' + SNAP_DATA + b"}}") is BookStatus.SNAPSHOT
