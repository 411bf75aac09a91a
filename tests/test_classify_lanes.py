"""The classifier's lane (how the listener queues an OTHER message) against the oracle.

Contract (ARCHITECTURE.md, "Classification" and "Listener"): for a message the fast
matcher sorts as OTHER, ``classify_lane`` returns the oracle's ``(lane, channel)``
(``drbfast.oracle.lane_reference``) or ``Lane.UNKNOWN``; never a wrong lane or channel.
``lane_exact`` (fast, then the oracle) always equals the oracle. The layouts Deribit
really sends (a numeric-id reply, a notification with jsonrpc, method, params, channel
first) never need the oracle; they are decided by their first bytes (rule 0), and on
valid messages rule 0 agrees with the parse (``lane_parsed``), which is checked here too.

Evidence: every captured sample, hand-written cases with their answer written out (so
the oracle is checked too), the generated corpora of test_classify.py, notifications in
the production layout with random channels and bodies, and byte mutations of those.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drbfast._classify import classify_lane, lane_exact
from drbfast.kinds import Kind, Lane
from drbfast.oracle import channel_lane, lane_parsed, lane_reference

from .test_classify import INTERESTING, examples, gen_payload

SAMPLES = Path(__file__).resolve().parent / "samples"
SAMPLE_FILES = sorted(SAMPLES.glob("*.json"))

P, OR, CF, BK, UNK = Lane.PRIORITY, Lane.ORDERED, Lane.CONFLATE, Lane.BOOK, Lane.UNKNOWN
SUB = b'{"jsonrpc":"2.0","method":"subscription","params":{"channel":"'


def check(payload: bytes, expected: tuple[Lane, str] | None = None) -> tuple[Lane, str]:
    """Assert the contract on one input; return the oracle's answer."""
    truth = lane_reference(payload)
    if expected is not None:
        assert truth == expected, f"oracle says {truth!r}, expected {expected!r} for {payload[:200]!r}"
    kind, lane, channel = classify_lane(payload)
    if lane != UNK:
        assert kind == Kind.OTHER, "a lane is only given for OTHER"
        assert (lane, channel or "") == truth, f"fast {(lane, channel)!r} oracle {truth!r} for {payload[:300]!r}"
    assert lane_exact(payload) == truth, f"lane_exact != oracle for {payload[:300]!r}"
    return truth


def notification(channel: str, data: Any = None, **extra: Any) -> bytes:
    body = {"jsonrpc": "2.0", "method": "subscription", "params": {"channel": channel, "data": data, **extra}}
    return json.dumps(body, separators=(",", ":")).encode()


# ------------------------------------------------------------------ channels

CHANNELS = [
    ("user.orders.BTC-PERPETUAL.raw", P), ("user.trades.any.any.100ms", P), ("user.portfolio.btc", P),
    ("user.changes.BTC-PERPETUAL.raw", P), ("user.lock", P), ("user.access_log", P),
    ("book.BTC-PERPETUAL.raw", BK), ("book.ETH-PERPETUAL.100.1.100ms", BK),
    ("ticker.BTC-PERPETUAL.raw", CF), ("quote.BTC-PERPETUAL", CF), ("markprice.options.btc_usd", CF),
    ("deribit_price_index.btc_usd", CF), ("deribit_price_ranking.btc_usd", CF),
    ("deribit_price_statistics.btc_usd", CF), ("deribit_volatility_index.btc_usd", CF),
    ("estimated_expiration_price.btc_usd", CF), ("perpetual.BTC-PERPETUAL.100ms", CF),
    ("incremental_ticker.BTC-PERPETUAL", OR), ("trades.BTC-PERPETUAL.raw", OR),
    ("trades.option.BTC.100ms", OR), ("platform_state", OR), ("platform_state.public_methods_state", OR),
    ("instrument.state.any.any", OR), ("announcements", OR), ("chart.trades.BTC-PERPETUAL.1", OR),
    ("", OR), ("user", OR), ("book", OR), ("tickers.x", OR), ("User.orders.x", OR), ("userx.orders", OR),
]


@pytest.mark.parametrize("channel,lane", CHANNELS, ids=[c or "empty" for c, _ in CHANNELS])
def test_channel_lanes(channel: str, lane: Lane) -> None:
    assert channel_lane(channel) == lane
    payload = notification(channel, {"x": 1})
    check(payload, (lane, channel))
    # The production layout is decided by the fast matcher, with the channel as a slice.
    assert classify_lane(payload) == (Kind.OTHER, lane, channel if channel else None)


@pytest.mark.parametrize("path", SAMPLE_FILES, ids=[p.name for p in SAMPLE_FILES])
def test_sample(path: Path) -> None:
    raw = path.read_bytes()
    for payload in {raw, raw.strip()}:
        check(payload)
    compact = raw.strip()
    if compact.startswith(SUB) or (compact.startswith(b'{"jsonrpc":"2.0","id":') and compact[22:23].isdigit()):
        assert classify_lane(compact)[1] != UNK, "a production layout needs no oracle"


# ------------------------------------------------------------------ hand-written cases

REPLY = b'{"jsonrpc":"2.0","id":7,"result":{"method":"x"},"usIn":1,"usOut":2,"usDiff":1,"testnet":true}'
CASES: list[tuple[str, bytes, tuple[Lane, str]]] = [
    ("reply", REPLY, (P, "")),
    ("reply_negative_id", REPLY.replace(b'"id":7', b'"id":-7'), (P, "")),
    ("reply_float_id", REPLY.replace(b'"id":7', b'"id":7.5e3'), (P, "")),
    ("reply_error", b'{"jsonrpc":"2.0","id":3,"error":{"code":10028,"message":"too_many_requests"}}', (P, "")),
    ("reply_string_id", b'{"jsonrpc":"2.0","id":"mine","result":1}', (P, "")),
    ("reply_null_id", b'{"jsonrpc":"2.0","id":null,"error":{"code":-32700}}', (P, "")),
    ("reply_id_later", b'{"jsonrpc":"2.0","result":1,"id":5}', (P, "")),
    # Rule 0 decides the production layouts by their first bytes, valid or not:
    ("reply_with_method", b'{"jsonrpc":"2.0","id":7,"result":1,"method":"subscription","params":{"channel":"book.x"}}', (P, "")),
    ("reply_truncated", REPLY[:-1], (P, "")),
    ("reply_trailing_garbage", REPLY + b"x", (P, "")),
    ("reply_bad_number", REPLY.replace(b'"id":7', b'"id":07'), (P, "")),
    ("reply_bare_minus", b'{"jsonrpc":"2.0","id":-', (P, "")),
    ("note_truncated", notification("user.orders.x", {"a": 1})[:-2], (P, "user.orders.x")),
    ("note_trailing_comma", notification("ticker.x", 1)[:-2] + b",}}", (CF, "ticker.x")),
    ("note_data_huge_int", SUB + b'trades.x","data":' + b"1" * 5000 + b"}}", (OR, "trades.x")),
    ("note_only_the_channel", SUB + b'book.x"', (BK, "book.x")),
    ("note_with_id", SUB + b'book.x","data":1},"id":5}', (BK, "book.x")),
    ("note_duplicate_channel", SUB + b'user.x","channel":"trades.y","data":1}}', (P, "user.x")),
    ("note_duplicate_method", SUB + b'book.x","data":1},"method":"heartbeat"}', (BK, "book.x")),
    ("note_duplicate_params", SUB + b'book.x","data":1},"params":{"channel":"user.y"}}', (BK, "book.x")),
    ("note_del_in_channel", SUB + b'ticker.\x7f","data":1}}', (CF, "ticker.\x7f")),
    ("note_empty_channel", SUB + b'","data":1}}', (OR, "")),
    # Anything else goes by the parse:
    ("note_unterminated_channel", SUB + b"user.x", (OR, "")),
    ("note_escaped_channel", SUB + b'user\\u002eorders","data":1}}', (P, "user.orders")),
    ("note_escape_makes_book", SUB + b'\\u0062ook.x","data":1}}', (BK, "book.x")),
    ("note_escaped_invalid", SUB + b'\\u0062ook.x","data":}}', (OR, "")),
    ("note_non_ascii_channel", SUB + 'ticker.é","data":1}}'.encode(), (CF, "ticker.é")),
    ("note_invalid_utf8", SUB + b'ticker.\xff","data":1}}', (OR, "")),
    ("note_control_char", SUB + b'ticker.\x01","data":1}}', (OR, "")),
    ("note_channel_not_string", b'{"jsonrpc":"2.0","method":"subscription","params":{"channel":5,"data":1}}', (OR, "")),
    ("note_no_channel", b'{"jsonrpc":"2.0","method":"subscription","params":{"data":1}}', (OR, "")),
    ("note_params_not_object", b'{"jsonrpc":"2.0","method":"subscription","params":[1]}', (OR, "")),
    ("note_other_method", b'{"jsonrpc":"2.0","method":"heartbeat","params":{"type":"other"}}', (OR, "")),
    ("note_data_first", b'{"jsonrpc":"2.0","method":"subscription","params":{"data":{},"channel":"user.x"}}', (P, "user.x")),
    ("note_params_first", b'{"params":{"channel":"book.x","data":[]},"method":"subscription","jsonrpc":"2.0"}', (BK, "book.x")),
    ("note_spaced", b'{ "jsonrpc" : "2.0", "method" : "subscription", "params" : { "channel" : "quote.x" } }', (CF, "quote.x")),
    ("note_data_deep", b'{"method":"subscription","params":{"channel":"trades.x","data":' + b"[" * 300 + b"]" * 300 + b"}}", (OR, "trades.x")),
    ("note_id_and_method", b'{"id":1,"method":"subscription","params":{"channel":"book.x"}}', (BK, "book.x")),
    ("not_json", b"hello", (OR, "")),
    ("array", b"[1,2]", (OR, "")),
    ("empty_object", b"{}", (OR, "")),
    ("empty", b"", (OR, "")),
]


@pytest.mark.parametrize("name,payload,expected", CASES, ids=[c[0] for c in CASES])
def test_case(name: str, payload: bytes, expected: tuple[Lane, str]) -> None:
    check(payload, expected)


def test_every_truncation_of_a_notification() -> None:
    full = notification("book.BTC-PERPETUAL.raw", {"type": "change", "bids": [["new", 1.5, 10]], "asks": []})
    for i in range(len(full)):
        check(full[:i])
    assert classify_lane(full)[1] == BK
    assert lane_parsed(full) == lane_reference(full)


# ------------------------------------------------------------------ generated


@examples(300)
@given(st.integers(0, 2**64), st.lists(st.text(max_size=12), max_size=3))
def test_generated_messages(seed: int, pool: list[str]) -> None:
    """The layout-varying generator of test_classify.py (heartbeats, replies,
    notifications, arbitrary objects) checked for lanes."""
    payload, _ = gen_payload(random.Random(seed), pool)
    check(payload)


def test_generated_corpus_deterministic() -> None:
    rng = random.Random(20261201)
    for _ in range(3_000):
        check(gen_payload(rng)[0])


PREFIXES = ["user.", "book.", "ticker.", "quote.", "trades.", "incremental_ticker.", "platform_state",
            "markprice.", "perpetual.", "deribit_price_index.", "x", ""]
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)


@st.composite
def production_notification(draw: st.DrawFn) -> bytes:
    channel = draw(st.sampled_from(PREFIXES)) + draw(st.text(max_size=12))
    extra = draw(st.dictionaries(st.sampled_from(["label", "channel", "data", "x"]), JSON_VALUES, max_size=2))
    params = {"channel": channel, "data": draw(JSON_VALUES), **{k: v for k, v in extra.items() if k != "channel"}}
    body: dict[str, Any] = {"jsonrpc": "2.0", "method": "subscription", "params": params}
    if draw(st.booleans()):
        body[draw(st.sampled_from(["id", "method", "params", "usIn"]))] = draw(JSON_VALUES)
    text = json.dumps(body, separators=(",", ":"), ensure_ascii=draw(st.booleans()))
    if "channel" in extra and draw(st.booleans()):
        # a duplicate channel key after the first one (first wins)
        text = text.replace('"data":', '"channel":' + json.dumps(extra["channel"]) + ',"data":', 1)
    return text.encode("utf-8", "surrogatepass")


@examples(300)
@given(production_notification())
def test_production_notifications(payload: bytes) -> None:
    check(payload)


@st.composite
def mutated_notification(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from([notification(c, {"a": [1, "b"]}) for c, _ in CHANNELS[:20]] + [REPLY])))
    for _ in range(draw(st.integers(1, 3))):
        pos = draw(st.integers(0, len(data) - 1))
        op = draw(st.sampled_from(["insert", "delete", "replace"]))
        b = draw(st.one_of(st.sampled_from(list(INTERESTING)), st.integers(0, 255)))
        if op == "insert":
            data.insert(pos, b)
        elif op == "delete":
            del data[pos]
        else:
            data[pos] = b
    return bytes(data)


@examples(600)
@given(mutated_notification())
def test_mutated_notifications(payload: bytes) -> None:
    check(payload)
