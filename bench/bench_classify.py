"""Classifier cost per message, beside the decoders a Python stack would use instead.

Run (not collected by a plain ``pytest``: testpaths is ``tests``):

    python -m pytest bench/bench_classify.py --benchmark-disable-gc --benchmark-min-rounds=200 \
        --benchmark-min-time=0.0005 --benchmark-columns=min,median,mean,stddev,rounds -q -s

(``--benchmark-min-time`` makes pytest-benchmark time many calls per round; with its
default each round may be a single call and the timer's own cost, ~80 ns, shows up.)

Two views of the same messages:

* ``test_decoder``: one pytest-benchmark group per message, the four competitors side by
  side, each timed as one Python call per message (``benchmark(fn, payload)``: the
  function and the payload are bound before timing, so no lookup is in the timed body).
  This includes the ~25-40 ns of a Python call for everyone.
* ``test_c_loop``: ``drbfast._classify.bench_classify`` times the classifier inside a C
  loop (no Python call per message) -- what the listener pays per frame. Its figures go
  to ``extra_info`` and to the table printed by ``test_report`` at the end, with the
  issue's targets checked against them (reported, not asserted: a benchmark does not fail).
"""

from __future__ import annotations

import json
import statistics
import timeit
from pathlib import Path
from typing import Any, Callable

import orjson
import pytest
import simdjson

from drbfast._classify import bench_classify, classify, classify_exact
from drbfast.kinds import Kind

SAMPLES = Path(__file__).resolve().parents[1] / "tests" / "samples"


def _compact(name: str) -> bytes:
    return json.dumps(json.loads((SAMPLES / name).read_bytes()), separators=(",", ":")).encode()


def _book(target: int) -> bytes:
    """The live book snapshot with price levels added until it is ``target`` bytes."""
    msg = json.loads((SAMPLES / "sub_book_snapshot_live_trimmed.json").read_bytes())
    data = msg["params"]["data"]
    bid, ask = data["bids"][-1][1], data["asks"][-1][1]
    while len(json.dumps(msg, separators=(",", ":"))) < target:
        bid, ask = round(bid - 0.01, 2), round(ask + 0.01, 2)
        data["bids"].append(["new", bid, 0.25])
        data["asks"].append(["new", ask, 1.5])
    return json.dumps(msg, separators=(",", ":")).encode()


def _reordered(payload: bytes) -> bytes:
    """The same message with its members in reverse order (method last)."""
    msg = json.loads(payload)
    return json.dumps(dict(reversed(list(msg.items()))), separators=(",", ":")).encode()


TR_PROD = (SAMPLES / "heartbeat_test_request.json").read_bytes().strip()
BOOK_5K = _book(5_000)

#: name -> (payload, expected kind, target ns inside the C loop or None if informative)
MESSAGES: dict[str, tuple[bytes, Kind, float | None]] = {
    "test_request (production layout)": (TR_PROD, Kind.TEST_REQUEST, 10.0),
    "test_request (reordered)": (
        b'{"method":"heartbeat","params":{"type":"test_request"},"jsonrpc":"2.0"}', Kind.TEST_REQUEST, 50.0),
    "test_request (spaced)": (
        b'{ "params": { "type": "test_request" }, "method": "heartbeat", "jsonrpc": "2.0" }', Kind.TEST_REQUEST, 50.0),
    "test_request (reordered, spaced, escaped)": (
        b'{ "jsonrpc" : "2.0", "method" : "heart\\u0062eat", "params" : { "type" : "test_request" } }',
        Kind.TEST_REQUEST, 50.0),
    "heartbeat": (b'{"params":{"type":"heartbeat"},"method":"heartbeat","jsonrpc":"2.0"}', Kind.HEARTBEAT, 5.0),
    "ticker ~500 B": (_compact("sub_ticker_live.json"), Kind.OTHER, 5.0),
    "book snapshot ~5 KB": (BOOK_5K, Kind.OTHER, 5.0),
    # Informative: not a layout Deribit sends, shows what an unusual layout costs.
    "book ~5 KB, method last (informative)": (_reordered(BOOK_5K), Kind.OTHER, None),
    "user response ~350 B": (_compact("response_envelope_example.json"), Kind.OTHER, 5.0),
    "engine reply (TEST_REPLY)": (
        b'{"jsonrpc":"2.0","id":"~drbfast~000000000001","result":{"version":"1.2.26"},"usIn":1,"usOut":2,"usDiff":1,"testnet":false}',
        Kind.TEST_REPLY, None),
}

_parser = simdjson.Parser()

DECODERS: dict[str, Callable[[bytes], Any]] = {
    "drbfast.classify": classify,  # takes any buffer (typed memoryview argument)
    "drbfast.classify_exact": classify_exact,  # bytes only; same matcher
    "json.loads": json.loads,
    "orjson.loads": orjson.loads,
    "simdjson.Parser.parse": _parser.parse,  # the returned document is dropped at once
}

C_LOOP_N = 200_000
C_LOOP_REPEATS = 15
RESULTS: dict[str, dict[str, float]] = {}


def test_messages_are_what_they_claim() -> None:
    for name, (payload, kind, _) in MESSAGES.items():
        assert classify(payload) == kind, name
    assert 400 <= len(MESSAGES["ticker ~500 B"][0]) <= 700
    assert 4_900 <= len(BOOK_5K) <= 5_200


@pytest.mark.parametrize("decoder", list(DECODERS))
@pytest.mark.parametrize("name", list(MESSAGES))
def test_decoder(benchmark: Any, name: str, decoder: str) -> None:
    payload = MESSAGES[name][0]
    benchmark.group = f"{name} ({len(payload)} B)"
    benchmark.extra_info["bytes"] = len(payload)
    benchmark(DECODERS[decoder], payload)


@pytest.mark.parametrize("name", list(MESSAGES))
def test_c_loop(benchmark: Any, name: str) -> None:
    """Mean ns per classification inside a C loop of C_LOOP_N, repeated; min and median."""
    payload = MESSAGES[name][0]
    benchmark.group = "drbfast classify inside a C loop (ns/message in extra_info)"
    runs = [bench_classify(payload, C_LOOP_N) for _ in range(C_LOOP_REPEATS)]
    benchmark.pedantic(bench_classify, args=(payload, C_LOOP_N), rounds=3, iterations=1)
    RESULTS.setdefault(name, {}).update(c_min=min(runs), c_median=statistics.median(runs))
    benchmark.extra_info.update(bytes=len(payload), ns_min=round(min(runs), 2), ns_median=round(statistics.median(runs), 2))


def _per_call_ns(fn: Callable[[bytes], Any], payload: bytes) -> float:
    """Best of 7 timeit runs, ns per call (one Python call each, as in test_decoder)."""
    number = max(1000, min(200_000, int(2e7 // (len(payload) + 100))))
    return min(timeit.repeat(lambda: fn(payload), number=number, repeat=7)) / number * 1e9


def test_report() -> None:
    """The table for bench/CLASSIFY_RESULTS.md, and the issue's targets checked."""
    lines = [
        "| message | bytes | classify, C loop (min / median ns) | classify() call | classify_exact() call | json.loads | orjson.loads | simdjson parse | orjson.loads / classify (C loop) | target (C loop) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    verdicts = []
    for name, (payload, _, target) in MESSAGES.items():
        if name not in RESULTS:  # run alone: measure here
            runs = [bench_classify(payload, C_LOOP_N) for _ in range(C_LOOP_REPEATS)]
            RESULTS[name] = {"c_min": min(runs), "c_median": statistics.median(runs)}
        r = RESULTS[name]
        calls = {d: _per_call_ns(fn, payload) for d, fn in DECODERS.items()}
        ratio = calls["orjson.loads"] / r["c_median"]
        ok_target = target is None or r["c_median"] <= target
        ok_ratio = ratio >= 10
        verdict = "informative" if target is None else f"<= {target:g} ns: {'met' if ok_target else 'NOT met'}; >= 10x orjson: {'met' if ok_ratio else 'NOT met'}"
        verdicts.append((name, ok_target and (target is None or ok_ratio)))
        lines.append(
            f"| {name} | {len(payload)} | {r['c_min']:.2f} / {r['c_median']:.2f} | {calls['drbfast.classify']:.0f} | {calls['drbfast.classify_exact']:.0f} | "
            f"{calls['json.loads']:.0f} | {calls['orjson.loads']:.0f} | {calls['simdjson.Parser.parse']:.0f} | "
            f"{ratio:.0f}x | {verdict} |")
    print("\n" + "\n".join(lines))
    print("\nall targets met" if all(ok for _, ok in verdicts) else
          "\ntargets NOT met for: " + ", ".join(n for n, ok in verdicts if not ok))
