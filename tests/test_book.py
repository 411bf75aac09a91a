"""The compiled order book (drbfast._book) on the Deribit samples and on injected faults.

Every failure path is driven by a real message; "never half-applied" is checked by
comparing the whole book before and after the failing frame.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from drbfast import _book
from drbfast._book import OrderBook, apply_all, measure_apply
from drbfast.book import RESYNC_STATUSES, BookSnapshot, BookStatus, book_channel, parse_book_channel
from drbfast.book_reference import ReferenceBook
from drbfast.bookgen import PRESETS, BookStreamGenerator
from drbfast.emulator.exchange import standalone_market
from drbfast.emulator.market import notification

SAMPLES = Path(__file__).parent / "samples"
CH = "book.BTC-PERPETUAL.100ms"


def sample(name: str) -> bytes:
    return (SAMPLES / name).read_bytes().strip()


def msg(data: dict[str, Any], channel: str = CH) -> bytes:
    return json.dumps({"jsonrpc": "2.0", "method": "subscription",
                       "params": {"channel": channel, "data": data}}, separators=(",", ":")).encode()


def snap(bids: list[Any], asks: list[Any], change_id: int = 10, **extra: Any) -> bytes:
    return msg({"type": "snapshot", "change_id": change_id, "timestamp": 1000,
                "bids": [["new", p, a] for p, a in bids], "asks": [["new", p, a] for p, a in asks], **extra})


def change(bids: list[Any], asks: list[Any], prev: int, change_id: int, **extra: Any) -> bytes:
    return msg({"type": "change", "change_id": change_id, "prev_change_id": prev, "timestamp": 2000,
                "bids": bids, "asks": asks, **extra})


def state(b: OrderBook) -> tuple[Any, ...]:
    return (b.bids(), b.asks(), b.change_id, b.timestamp)


@pytest.fixture
def book() -> OrderBook:
    b = OrderBook(CH)
    assert b.apply(snap([(100.0, 1.0), (99.5, 2.0), (99.0, 3.0)], [(100.5, 4.0), (101.0, 5.0)])) == BookStatus.SNAPSHOT
    return b


# --- the samples --------------------------------------------------------------------------

def test_docs_snapshot_then_change() -> None:
    b = OrderBook(CH)
    assert not b.is_synced
    assert b.apply(sample("sub_book_snapshot.json")) is BookStatus.SNAPSHOT
    assert b.is_synced and b.change_id == 297217 and b.timestamp == 1554373962454
    assert b.bids() == [(5042.34, 30.0), (5041.94, 20.0)]
    assert b.asks() == [(5042.64, 40.0), (5043.3, 40.0)]
    assert b.apply(sample("sub_book_change.json")) is BookStatus.APPLIED
    assert b.bids() == [] and b.best_bid is None and b.spread is None and b.mid is None
    assert b.best_ask == (5042.64, 40.0)
    assert b.change_id == 297218 and b.timestamp == 1554373911330
    assert (b.updates, b.snapshots, b.levels) == (1, 1, 6)


def test_live_snapshot_sample_any_key_order() -> None:
    b = OrderBook("book.NVDA_USDC-PERPETUAL.100ms")
    assert b.apply(sample("sub_book_snapshot_live_trimmed.json")) is BookStatus.SNAPSHOT
    assert b.best_bid == (228.51, 0.22) and b.best_ask == (228.52, 0.34)
    assert b.bids(2) == [(228.51, 0.22), (228.48, 0.34)]
    assert b.asks() == [(228.52, 0.34), (228.54, 87.94), (228.55, 0.43)]


def test_live_change_sample_prev_change_id_last() -> None:
    """The live change frame puts prev_change_id after the levels (PROTOCOL.md 4.1)."""
    raw = sample("sub_book_change_live.json")
    b = OrderBook("book.ALGO_USDC-PERPETUAL.100ms")
    base = snap([(0.11374, 5.0), (0.11344, 7.0)], [(0.11396, 1.0)], change_id=193809631160)
    b2 = json.loads(base)
    b2["params"]["channel"] = "book.ALGO_USDC-PERPETUAL.100ms"
    assert b.apply(json.dumps(b2).encode()) is BookStatus.SNAPSHOT
    assert b.apply(raw) is BookStatus.APPLIED
    assert b.bids() == [(0.11374, 1054.0), (0.11363, 308897.0)]
    assert b.asks() == [(0.11396, 1054.0), (0.11411, 1931.0)]
    assert b.change_id == 193809634213


@pytest.mark.parametrize("name, channel, bid, ask", [
    ("sub_book_grouped.json", "book.ETH-PERPETUAL.100.1.100ms", (160.0, 40.0), (161.0, 20.0)),
    ("sub_book_grouped_live_trimmed.json", "book.BTC_USDC-PERPETUAL.none.20.100ms", (86775.8, 0.216), (86776.0, 0.0009)),
])
def test_grouped_samples(name: str, channel: str, bid: tuple[float, float], ask: tuple[float, float]) -> None:
    b = OrderBook(channel)
    assert b.grouped
    assert b.apply(sample(name)) is BookStatus.SNAPSHOT
    assert b.best_bid == bid and b.best_ask == ask and b.is_synced
    assert b.spread == ask[0] - bid[0] and b.mid == (bid[0] + ask[0]) / 2
    # every grouped frame is a full window: applying it again is another snapshot
    assert b.apply(sample(name)) is BookStatus.SNAPSHOT and b.snapshots == 2


def test_other_messages_leave_the_book_alone(book: OrderBook) -> None:
    before = state(book)
    for name in ("heartbeat_test_request.json", "sub_ticker_live.json", "sub_trades.json",
                 "public_test_response.json", "subscribe_response.json", "sub_platform_state.json"):
        assert book.apply(sample(name)) is BookStatus.NOT_BOOK, name
    assert book.apply(sample("sub_book_grouped.json")) is BookStatus.OTHER_CHANNEL
    assert book.apply(sample("sub_book_change_live.json")) is BookStatus.OTHER_CHANNEL
    assert book.apply(b"[1, 2]") is BookStatus.NOT_BOOK
    assert book.apply(b"{}") is BookStatus.NOT_BOOK
    assert state(book) == before and book.is_synced and book.other == 10


# --- integrity: gaps, unknown levels, crossed, unreadable ---------------------------------

def test_gap_resyncs_and_ignores_changes_until_a_snapshot(book: OrderBook) -> None:
    before = state(book)
    assert book.apply(change([["change", 100.0, 9.0]], [], prev=11, change_id=12)) is BookStatus.GAP
    assert not book.is_synced and state(book) == before
    assert (book.gaps, book.resyncs) == (1, 1)
    # the frame that would have continued the chain is ignored now
    assert book.apply(change([["change", 100.0, 9.0]], [], prev=10, change_id=13)) is BookStatus.RESYNCING
    assert state(book) == before and book.ignored == 1 and book.resyncs == 1
    assert book.apply(snap([(98.0, 1.0)], [(99.0, 1.0)], change_id=50)) is BookStatus.SNAPSHOT
    assert book.is_synced and book.bids() == [(98.0, 1.0)] and book.change_id == 50
    assert book.apply(change([["new", 97.5, 2.0]], [], prev=50, change_id=51)) is BookStatus.APPLIED


def test_change_before_any_snapshot_is_ignored() -> None:
    b = OrderBook(CH)
    assert b.apply(change([["new", 1.0, 1.0]], [], prev=0, change_id=1)) is BookStatus.RESYNCING
    assert b.bids() == [] and b.ignored == 1 and b.resyncs == 0


def test_unknown_level_rolls_the_whole_frame_back(book: OrderBook) -> None:
    before = state(book)
    # valid edits on both sides first, then a change of a level that does not exist
    frame = change([["new", 100.25, 7.0], ["delete", 99.5, 0.0], ["change", 99.0, 8.0]],
                   [["change", 100.5, 1.5], ["delete", 101.0, 0.0], ["new", 102.0, 1.0], ["change", 103.0, 1.0]],
                   prev=10, change_id=11)
    assert book.apply(frame) is BookStatus.UNKNOWN_LEVEL
    assert state(book) == before and not book.is_synced and book.unknown_levels == 1


@pytest.mark.parametrize("entry", [["delete", 99.75, 0.0], ["change", 99.75, 1.0]])
def test_unknown_level_on_delete_and_change(book: OrderBook, entry: list[Any]) -> None:
    assert book.apply(change([entry], [], prev=10, change_id=11)) is BookStatus.UNKNOWN_LEVEL


def test_crossed_change_is_rolled_back(book: OrderBook) -> None:
    before = state(book)
    frame = change([["change", 99.0, 1.0], ["new", 100.5, 1.0]], [], prev=10, change_id=11)  # bid == best ask
    assert book.apply(frame) is BookStatus.CROSSED
    assert state(book) == before and not book.is_synced and book.crossed == 1


def test_crossed_snapshot_is_not_committed(book: OrderBook) -> None:
    before = state(book)
    assert book.apply(snap([(101.0, 1.0)], [(100.0, 1.0)], change_id=99)) is BookStatus.CROSSED
    assert state(book) == before and not book.is_synced


def test_a_level_moved_across_within_one_frame_is_fine(book: OrderBook) -> None:
    """Crossing is judged after the whole frame: an ask deleted and a bid placed there."""
    frame = change([["new", 100.5, 1.0]], [["delete", 100.5, 0.0]], prev=10, change_id=11)
    assert book.apply(frame) is BookStatus.APPLIED
    assert book.best_bid == (100.5, 1.0) and book.best_ask == (101.0, 5.0)


UNREADABLE = {
    "truncated": lambda m: m[:-7],
    "trailing garbage": lambda m: m + b"x",
    "NaN amount": lambda m: m.replace(b'9.0]', b'NaN]'),
    "Infinity price": lambda m: m.replace(b'100.0,', b'Infinity,'),
    "huge number": lambda m: m.replace(b'100.0,', b'1e400,'),
    "string price": lambda m: m.replace(b'100.0,', b'"100.0",'),
    "bool amount": lambda m: m.replace(b'9.0]', b'true]'),
    "negative amount": lambda m: m.replace(b'9.0]', b'-9.0]'),
    "unknown action": lambda m: m.replace(b'"change",100', b'"modify",100'),
    "escaped action": lambda m: m.replace(b'"change",100', b'"chang\\u0065",100'),
    "four members": lambda m: m.replace(b'9.0]', b'9.0,1]'),
    "pair on a triple channel": lambda m: m.replace(b'"change",100.0,9.0', b'100.0,9.0'),
    "float change_id": lambda m: m.replace(b'"change_id":11', b'"change_id":11.0'),
    "missing change_id": lambda m: m.replace(b'"change_id":11,', b''),
    "huge change_id": lambda m: m.replace(b'"change_id":11', b'"change_id":1000000000000000000'),
    "missing prev_change_id": lambda m: m.replace(b'"prev_change_id":10,', b''),
    "null prev_change_id": lambda m: m.replace(b'"prev_change_id":10', b'"prev_change_id":null'),
    "missing type": lambda m: m.replace(b'"type":"change",', b''),
    "unknown type": lambda m: m.replace(b'"type":"change"', b'"type":"delta"'),
    "levels not a list": lambda m: m.replace(b'"asks":[]', b'"asks":{}'),
    "data not an object": lambda m: m.split(b'"data":')[0] + b'"data":[]}}',
    "bad utf-8 in a skipped string": lambda m: m.replace(b'"jsonrpc":"2.0"', b'"jsonrpc":"2.\xff"'),
    "raw control byte": lambda m: m.replace(b'"jsonrpc":"2.0"', b'"jsonrpc":"2.\x01"'),
    "leading zero": lambda m: m.replace(b'9.0]', b'09.0]'),
    "deep nesting": lambda m: m.replace(b'"jsonrpc":"2.0"', b'"x":' + b"[" * 300 + b"]" * 300),
}


@pytest.mark.parametrize("fault", sorted(UNREADABLE))
def test_unreadable_frames_resync_without_touching_the_book(book: OrderBook, fault: str) -> None:
    good = change([["change", 100.0, 9.0]], [], prev=10, change_id=11)
    bad = UNREADABLE[fault](good)
    assert bad != good
    before = state(book)
    assert book.apply(bad) is BookStatus.PARSE_ERROR
    assert state(book) == before and not book.is_synced and book.parse_errors == 1
    # the reference agrees that the frame is not applicable (or the scanner is stricter)
    ref = ReferenceBook(CH)
    ref.apply(snap([(100.0, 1.0), (99.5, 2.0), (99.0, 3.0)], [(100.5, 4.0), (101.0, 5.0)]))
    if fault not in ("escaped action", "deep nesting"):
        assert ref.apply(bad) is BookStatus.PARSE_ERROR


def test_snapshot_that_does_not_parse_keeps_resyncing(book: OrderBook) -> None:
    before = state(book)
    assert book.apply(snap([(1.0, 1.0)], [(2.0, 1.0)])[:-30]) is BookStatus.PARSE_ERROR
    assert state(book) == before and not book.is_synced
    # a snapshot may only list "new" levels
    assert book.apply(msg({"type": "snapshot", "change_id": 5, "bids": [["change", 1.0, 1.0]], "asks": []})) \
        is BookStatus.PARSE_ERROR
    assert state(book) == before and book.parse_errors == 2 and book.resyncs == 1


def test_escaped_channel_is_refused_not_misrouted(book: OrderBook) -> None:
    raw = change([["change", 100.0, 9.0]], [], prev=10, change_id=11).replace(b"book.BTC", b"book.\\u0042TC")
    assert book.apply(raw) is BookStatus.PARSE_ERROR


def test_reset_forces_a_resync(book: OrderBook) -> None:
    book.reset()
    assert not book.is_synced and book.resyncs == 1 and book.best_bid == (100.0, 1.0)
    assert book.apply(change([["change", 100.0, 9.0]], [], prev=10, change_id=11)) is BookStatus.RESYNCING
    book.reset()
    assert book.resyncs == 1


def test_resync_statuses() -> None:
    assert RESYNC_STATUSES == {BookStatus.GAP, BookStatus.UNKNOWN_LEVEL, BookStatus.CROSSED,
                               BookStatus.PARSE_ERROR, BookStatus.NO_MEMORY}


# --- level semantics --------------------------------------------------------------------

def test_new_change_delete_and_zero_amounts(book: OrderBook) -> None:
    frame = change([["new", 100.25, 7.0], ["change", 99.5, 0], ["new", 99.0, 3.5], ["new", 98.0, 0.0]],
                   [["delete", 100.5, 0.0], ["new", 100.5, 6.0], ["change", 101.0, 0.0]], prev=10, change_id=11)
    assert book.apply(frame) is BookStatus.APPLIED
    assert book.bids() == [(100.25, 7.0), (100.0, 1.0), (99.0, 3.5)]
    assert book.asks() == [(100.5, 6.0)]


def test_snapshot_out_of_order_repeated_and_zero_levels() -> None:
    b, ref = OrderBook(CH), ReferenceBook(CH)
    frame = snap([(1.0, 1.0), (3.0, 2.0), (2.0, 0.0), (3.0, 5.0), (0.5, 0.0), (2.0, 4.0)],
                 [(10.0, 1.0), (9.0, 0.0), (11.0, 2.0), (10.0, 0.0)])
    assert b.apply(frame) is ref.apply(frame) is BookStatus.SNAPSHOT
    assert b.bids() == ref.bids() == [(3.0, 5.0), (2.0, 4.0), (1.0, 1.0)]
    assert b.asks() == ref.asks() == [(11.0, 2.0)]


def test_layouts_whitespace_and_number_forms() -> None:
    """Any key order, any whitespace, exponents and ints give the same book."""
    plain = OrderBook(CH)
    plain.apply(snap([(86775.5, 10.0), (0.0005, 1e-05)], [(86776.0, 40.0)]))
    odd = OrderBook(CH)
    raw = (b' \n{ "params" : { "data" : { "bids" : [ [ "new" , 8.67755E4 , 1e1 ] ,\t[ "new", 5e-4, 0.00001 ] ],'
           b' "asks": [["new", 86776, 4.0e+1]], "timestamp": 1000, "change_id": 10, "type": "snapshot",'
           b' "instrument_name": "BTC-PERPETUAL", "extra": {"a": [null, true, false, "\\u00e9\xc3\xa9"]} },'
           b' "channel" : "book.BTC-PERPETUAL.100ms" }, "method" : "subscription", "jsonrpc" : "2.0" }\r\n')
    assert odd.apply(raw) is BookStatus.SNAPSHOT
    assert state(odd) == state(plain)


def test_first_duplicate_key_wins(book: OrderBook) -> None:
    raw = change([["change", 100.0, 9.0]], [], prev=10, change_id=11)
    raw = raw.replace(b'"bids":', b'"bids":[["change",99.0,1.0]],"bids":')
    assert book.apply(raw) is BookStatus.APPLIED
    assert book.bids() == [(100.0, 1.0), (99.5, 2.0), (99.0, 1.0)]


@pytest.mark.parametrize("text", ["0.30000000000000004", "86775.50000000000000001", "1.7976931348623157e308",
                                  "2.2250738585072014e-308", "5e-324", "123456789012345678901234567890",
                                  "0.1e-30", "9007199254740993", "1e23", "-0.0"])
def test_numbers_off_the_fast_path_are_exact(text: str) -> None:
    b = OrderBook("book.X.none.1.100ms")
    raw = ('{"jsonrpc":"2.0","method":"subscription","params":{"channel":"book.X.none.1.100ms",'
           f'"data":{{"change_id":1,"bids":[[{text},1]],"asks":[]}}}}}}').encode()
    assert b.apply(raw) is BookStatus.SNAPSHOT
    assert b.best_bid == (float(text), 1.0)


def test_negative_prices_are_levels_too() -> None:
    """Future spreads can trade at negative prices."""
    b = OrderBook("book.BTC-FS-26DEC26_PERP.100ms")
    raw = snap([(-1.5, 1.0), (-2.0, 1.0)], [(-1.0, 2.0)])
    raw = raw.replace(CH.encode(), b"book.BTC-FS-26DEC26_PERP.100ms")
    assert b.apply(raw) is BookStatus.SNAPSHOT
    assert b.best_bid == (-1.5, 1.0) and b.best_ask == (-1.0, 2.0) and b.spread == 0.5


# --- reads ------------------------------------------------------------------------------

def test_reads(book: OrderBook) -> None:
    assert book.best_bid == (100.0, 1.0) and book.best_ask == (100.5, 4.0)
    assert book.best_bid is book.best_bid  # kept while the top level stays
    book.apply(change([["change", 100.0, 2.0]], [["change", 100.5, 4.0]], prev=10, change_id=11))
    assert book.best_bid == (100.0, 2.0) and book.best_ask == (100.5, 4.0)
    book.apply(change([["delete", 100.0, 0.0]], [["new", 100.25, 4.0]], prev=11, change_id=12))
    assert book.best_bid == (99.5, 2.0) and book.best_ask == (100.25, 4.0)
    book.apply(change([["new", 100.0, 1.0]], [["delete", 100.25, 0.0]], prev=12, change_id=13))
    assert book.best_bid_price == 100.0 and book.best_ask_price == 100.5
    assert book.spread == 0.5 and book.mid == 100.25
    assert (book.bid_depth, book.ask_depth) == (3, 2)
    assert book.bids(2) == [(100.0, 1.0), (99.5, 2.0)] and book.bids(0) == [] and book.asks(10) == book.asks()
    with pytest.raises(ValueError):
        book.bids(-1)
    assert "synced 3x2" in repr(book)
    empty = OrderBook(CH)
    assert empty.best_bid is None and empty.best_ask is None and empty.change_id == 0
    assert empty.best_bid_price != empty.best_bid_price  # NaN


def test_snapshot_and_copy_are_stable(book: OrderBook) -> None:
    view = book.snapshot()
    twin = book.copy()
    assert isinstance(view, BookSnapshot) and view.bids == book.bids() and view.is_synced
    assert view.change_id == 10 and view.channel == CH
    assert book.apply(change([["delete", 100.0, 0.0]], [["new", 100.25, 1.0]], prev=10, change_id=11)) \
        is BookStatus.APPLIED
    assert view.bids[0] == (100.0, 1.0) and view.asks[0] == (100.5, 4.0)
    assert twin.bids() == view.bids and twin.asks() == view.asks and twin.change_id == 10
    # the copy keeps working on its own
    assert twin.apply(change([["delete", 99.0, 0.0]], [], prev=10, change_id=11)) is BookStatus.APPLIED
    assert twin.bids() == [(100.0, 1.0), (99.5, 2.0)] and book.bids() == [(99.5, 2.0), (99.0, 3.0)]
    assert book.snapshot(1).bids == [(99.5, 2.0)]


def test_to_numpy(book: OrderBook) -> None:
    np = pytest.importorskip("numpy")
    bids, asks = book.to_numpy()
    assert bids.dtype == np.float64 and bids.shape == (3, 2) and asks.shape == (2, 2)
    assert bids.tolist() == [list(x) for x in book.bids()] and asks.tolist() == [list(x) for x in book.asks()]
    assert book.to_numpy(1)[0].tolist() == [[100.0, 1.0]]
    bids[0, 0] = 0.0
    assert book.best_bid == (100.0, 1.0)  # a copy, not a view of the live book


def test_numpy_is_not_a_dependency() -> None:
    """Importing the book never imports NumPy; without NumPy only to_numpy fails."""
    code = (
        "import sys; sys.modules['numpy'] = None\n"
        "from drbfast._book import OrderBook\n"
        "b = OrderBook('book.X.100ms'); print(b.bids())\n"
        "try:\n    b.to_numpy()\nexcept ImportError:\n    print('no numpy')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["[]", "no", "numpy"]
    code = "import sys, drbfast._book, drbfast.book, drbfast.bookgen; print('numpy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "False", out.stderr


def test_rx_ns_and_buffer_types(book: OrderBook) -> None:
    frame = change([["change", 100.0, 9.0]], [], prev=10, change_id=11)
    assert book.apply(bytearray(frame), 12345) is BookStatus.APPLIED
    assert book.rx_ns == 12345 and book.timestamp == 2000
    frame = change([["change", 100.0, 8.0]], [], prev=11, change_id=12)
    assert book.apply(memoryview(frame)) is BookStatus.APPLIED
    assert book.rx_ns > 12345  # 0: stamped with CLOCK_MONOTONIC
    book.rx_ns = 7
    assert book.snapshot().rx_ns == 7
    with pytest.raises(TypeError):
        book.apply("text")
    assert book.version == 3


def test_channel_validation() -> None:
    for bad in ("ticker.BTC-PERPETUAL.100ms", "book.BTC-PERPETUAL", "book..100ms", 'book.A"B.100ms', "book.é.100ms"):
        with pytest.raises(ValueError):
            OrderBook(bad)
    b = OrderBook("book.ETH-PERPETUAL.100.1.100ms")
    assert b.grouped and b.instrument == "ETH-PERPETUAL" and b.channel == "book.ETH-PERPETUAL.100.1.100ms"
    assert book_channel("BTC-PERPETUAL") == CH
    assert book_channel("BTC-PERPETUAL", "agg2", group="none", depth=20) == "book.BTC-PERPETUAL.none.20.agg2"
    assert parse_book_channel("book.BTC-PERPETUAL.none.20.agg2") == ("BTC-PERPETUAL", True)
    with pytest.raises(ValueError):
        book_channel("BTC-PERPETUAL", group="none")
    with pytest.raises(ValueError):
        book_channel("A.B")


# --- streams ------------------------------------------------------------------------------

@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_generated_stream_matches_the_generators_book(preset: str) -> None:
    gen = BookStreamGenerator(preset, depth=60, seed=7)
    b, ref = OrderBook(gen.channel), ReferenceBook(gen.channel)
    for i in range(1500):
        frame = gen.change() if i else gen.snapshot()  # one at a time: gen.bids is the book after it
        assert b.apply(frame) is ref.apply(frame) is (BookStatus.SNAPSHOT if i == 0 else BookStatus.APPLIED)
        if i % 100 == 0:
            assert b.bids() == ref.bids() == gen.bids and b.asks() == ref.asks() == gen.asks
    assert b.bids() == gen.bids and b.asks() == gen.asks and b.change_id == gen.change_id
    grouped = OrderBook(gen.grouped_channel(10))
    for _ in range(50):
        assert grouped.apply(gen.grouped(10)) is BookStatus.SNAPSHOT
        assert grouped.bids() == gen.bids[:10] and grouped.asks() == gen.asks[:10]


def test_emulator_market_frames() -> None:
    """The emulator's own book frames (drbfast.emulator.market) keep the same book."""
    market = standalone_market(seed=3, depth=40)
    for name in ("BTC-PERPETUAL", "BTC-26DEC26-100000-C"):
        channel = f"book.{name}.100ms"
        b = OrderBook(channel)
        assert b.apply(notification(channel, market.snapshot(name, 1))) is BookStatus.SNAPSHOT
        for t in range(2000):
            assert b.apply(notification(channel, market.step_book(name, t))) is BookStatus.APPLIED
        inst = market.instruments[name]
        assert b.bids() == sorted(inst.bids.items(), reverse=True) and b.asks() == sorted(inst.asks.items())


def test_c_entry_helpers() -> None:
    gen = BookStreamGenerator(depth=30, seed=2)
    frames = gen.stream(300)
    b = OrderBook(gen.channel)
    assert apply_all(b, frames) == 0 and b.bids() == gen.bids and b.rx_ns == 1
    b2 = OrderBook(gen.channel)
    times = measure_apply(b2, frames, 5)
    assert len(times) == 301 and all(t >= 0 for t in times) and b2.asks() == gen.asks
    assert apply_all(b2, frames[1:2]) == 1  # replayed frame: a gap
    assert b2.gaps == 1


def test_module_exports() -> None:
    assert {"OrderBook", "apply_all", "measure_apply"} <= set(dir(_book))


def test_stub_matches_the_compiled_module() -> None:
    from tests.test_typing import test_stubs_match_the_compiled_modules

    test_stubs_match_the_compiled_modules(_book)


@pytest.mark.parametrize("raw, status", [
    (b'{"jsonrpc":"2.0","method":"subscription","params": \n{"channel":"book.BTC-PERPETUAL.100ms",'
     b'"data":{"type":"snapshot","change_id":1,"bids":[["new",1.0,1.0]],"asks":[]}}}', BookStatus.SNAPSHOT),
    (b'{"jsonrpc":"2.0","method":"subscription","params":[]}', BookStatus.NOT_BOOK),
    (b'{"jsonrpc":"2.0","method":"subscription","params":', BookStatus.PARSE_ERROR),
    (b'{"jsonrpc":"2.0","method":"subscription","params":{"channel":"book.BTC-PERPETUAL.100ms"}}',
     BookStatus.PARSE_ERROR),
    (b'{"jsonrpc":"2.0","method":"subscription","params":{"data":{},"channel":"book.ETH-PERPETUAL.100ms"}}',
     BookStatus.OTHER_CHANNEL),
    (b'{"jsonrpc":"2.0","method":"subscription","params":{"channel":"book.BTC-PERPETUAL.100ms","data":{'
     b'"type":"snapshot","change_id":1}},"method":"x"}', BookStatus.SNAPSHOT),
])
def test_production_prefix_edges(raw: bytes, status: BookStatus) -> None:
    """The envelope's fixed first 50 bytes are matched at once; what follows them is
    still read strictly (and agrees with the reference)."""
    b, ref = OrderBook(CH), ReferenceBook(CH)
    assert b.apply(raw) is status
    assert ref.apply(raw) is status


def test_early_answer_on_a_truncated_message_of_another_channel() -> None:
    """Documented difference: the channel settles it before the rest is read (the
    reference, parsing first, calls it unreadable). The book is untouched either way."""
    raw = b'{"jsonrpc":"2.0","method":"subscription","params":{"channel":"ticker.BTC-PERPETUAL.100ms"'
    b = OrderBook(CH)
    assert b.apply(raw) is BookStatus.NOT_BOOK and b.parse_errors == 0 and b.other == 1
    assert ReferenceBook(CH).apply(raw) is BookStatus.PARSE_ERROR


def test_long_stream_with_lost_frames_resyncs_to_the_truth() -> None:
    """Lost frames are gaps; a resync (here: the generator's next snapshot, as a
    resubscription would bring) restores the exact book, and no frame is applied in
    between."""
    import random

    gen = BookStreamGenerator(depth=100, seed=5)
    rng = random.Random(1)
    b = OrderBook(gen.channel)
    assert b.apply(gen.snapshot()) is BookStatus.SNAPSHOT
    statuses: dict[BookStatus, int] = {}
    for i in range(8_000):
        frame = gen.change()
        if rng.random() < 0.005:
            continue                                  # lost on the way
        status = b.apply(frame)
        statuses[status] = statuses.get(status, 0) + 1
        if status in RESYNC_STATUSES:
            assert status is BookStatus.GAP and not b.is_synced
            if rng.random() < 0.5:                    # the snapshot may come a few frames later
                assert b.apply(gen.change()) is BookStatus.RESYNCING
            assert b.apply(gen.snapshot()) is BookStatus.SNAPSHOT
        if i % 1000 == 0:
            assert b.is_synced and b.bids() == gen.bids and b.asks() == gen.asks
    assert b.bids() == gen.bids and b.asks() == gen.asks and b.change_id == gen.change_id
    assert statuses[BookStatus.GAP] == b.gaps == b.resyncs > 20
    assert b.updates == statuses[BookStatus.APPLIED]
