"""Classifier cost per message, beside the decoders a Python stack would use instead.

Run: python -m pytest bench/bench_classify.py --benchmark-disable-gc -q

Two views, both in one run:
* pytest-benchmark groups, one per message: drbfast's ``classify`` (one Python call
  each) against ``json.loads``, ``orjson.loads`` and simdjson's ``Parser.parse`` of the
  same bytes, looped N times inside the timed body so per-call overheads compare alike;
* the cost inside a C loop (``bench_classify``, no Python call per message), which is
  what the listener pays per frame; reported in ``extra_info`` and printed.
"""

from __future__ import annotations

import json
from pathlib import Path

import orjson
import pytest
import simdjson

from drbfast._classify import bench_classify, classify

SAMPLES = Path(__file__).resolve().parents[1] / "tests" / "samples"
N = 10_000


def _compact(name: str) -> bytes:
    return json.dumps(json.loads((SAMPLES / name).read_bytes()), separators=(",", ":")).encode()


def _book_5k() -> bytes:
    msg = json.loads((SAMPLES / "sub_book_snapshot_live_trimmed.json").read_bytes())
    data = msg["params"]["data"]
    bid, ask = data["bids"][-1][1], data["asks"][-1][1]
    while len(json.dumps(msg, separators=(",", ":"))) < 5_000:
        bid, ask = round(bid - 0.01, 2), round(ask + 0.01, 2)
        data["bids"].append(["new", bid, 0.5])
        data["asks"].append(["new", ask, 0.5])
    return json.dumps(msg, separators=(",", ":")).encode()


MESSAGES = {
    "test_request (production layout)": (SAMPLES / "heartbeat_test_request.json").read_bytes().strip(),
    "test_request (reordered)": b'{"method":"heartbeat","params":{"type":"test_request"},"jsonrpc":"2.0"}',
    "test_request (spaced)": b'{ "jsonrpc": "2.0", "method": "heartbeat", "params": { "type": "test_request" } }',
    "heartbeat": b'{"params":{"type":"heartbeat"},"method":"heartbeat","jsonrpc":"2.0"}',
    "ticker ~500 B": _compact("sub_ticker_live.json"),
    "book snapshot ~5 KB": _book_5k(),
}

_parser = simdjson.Parser()


def _simdjson(payload: bytes) -> object:
    doc = _parser.parse(payload)
    del doc
    return None


DECODERS = {"drbfast.classify": classify, "json.loads": json.loads, "orjson.loads": orjson.loads, "simdjson.parse": _simdjson}


@pytest.mark.parametrize("decoder", list(DECODERS))
@pytest.mark.parametrize("name", list(MESSAGES))
def test_per_message(benchmark: pytest.FixtureRequest, name: str, decoder: str) -> None:
    benchmark.group = f"{name} ({len(MESSAGES[name])} B), {N} messages"
    fn = DECODERS[decoder]
    payload = MESSAGES[name]

    def run() -> None:
        for _ in range(N):
            fn(payload)

    benchmark(run)


@pytest.mark.parametrize("name", list(MESSAGES))
def test_inside_c_loop(benchmark: pytest.FixtureRequest, name: str) -> None:
    benchmark.group = "classify inside a C loop (ns per message in extra_info)"
    payload = MESSAGES[name]
    ns = benchmark(bench_classify, payload, 1_000_000)
    benchmark.extra_info["ns_per_message"] = round(min(bench_classify(payload, 1_000_000) for _ in range(5)), 2)
    benchmark.extra_info["bytes"] = len(payload)
    print(f"\n{name}: {benchmark.extra_info['ns_per_message']} ns in the C loop ({len(payload)} B); last run {ns:.2f}")
