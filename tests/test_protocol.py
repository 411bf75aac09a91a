"""The sans-I/O session logic: request bytes, replies, splitting, book continuity."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drbfast.errors import ConfigurationError
from drbfast.protocol import BookTracker, Reply, RequestIds, encode_request, split_channels


def test_encode_request_and_reserved_ids() -> None:
    raw = encode_request(7, "public/get_time", {})
    assert json.loads(raw) == {"jsonrpc": "2.0", "id": 7, "method": "public/get_time", "params": {}}
    assert b" " not in raw
    with pytest.raises(ConfigurationError, match="reserved"):
        encode_request("~drbfast~000000000001", "public/test", {})
    assert "id" not in json.loads(encode_request(None, "public/test", {}))


def test_ids_increase() -> None:
    ids = RequestIds()
    assert [ids(), ids(), ids()] == [1, 2, 3]


def test_reply_from_message_handles_idless_and_string_timestamps() -> None:
    r = Reply.from_message({"jsonrpc": "2.0", "error": {"code": 11050}, "usIn": "10", "usOut": 25})
    assert r.id is None and not r.ok and (r.us_in, r.us_out) == (10, 25)
    assert Reply.from_message({"id": 1, "result": 5, "usIn": "x"}).us_in is None


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(alphabet="abcdefghijklmnopqrstuvwxyz.-_0123456789é", min_size=1, max_size=300), max_size=400))
def test_split_channels_keeps_every_channel_in_order_under_the_limit(channels: list[str]) -> None:
    chunks = list(split_channels("public/subscribe", channels, budget=4096))
    assert [c for chunk in chunks for c in chunk] == channels
    for chunk in chunks:
        assert len(encode_request(2**53, "public/subscribe", {"channels": chunk})) <= 4096


def test_split_refuses_a_channel_that_cannot_fit() -> None:
    with pytest.raises(ConfigurationError):
        list(split_channels("public/subscribe", ["x" * 5000], budget=4096))


def test_book_tracker_gap_then_snapshot() -> None:
    t = BookTracker()
    ch = "book.BTC-PERPETUAL.100ms"
    assert t.check(ch, {"type": "snapshot", "change_id": 10})
    assert t.check(ch, {"type": "change", "prev_change_id": 10, "change_id": 15})
    assert not t.check(ch, {"type": "change", "prev_change_id": 16, "change_id": 20}), "gap"
    assert not t.check(ch, {"type": "change", "prev_change_id": 20, "change_id": 21}), "still gapped"
    assert t.gaps == 1
    assert t.check(ch, {"type": "snapshot", "change_id": 30})
    assert t.check(ch, {"type": "change", "prev_change_id": 30, "change_id": 31})
    # grouped books (no prev_change_id) are full windows: always applicable
    assert t.check("book.BTC-PERPETUAL.none.10.100ms", {"change_id": 5})
