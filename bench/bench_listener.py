"""Receive-path cost per message: FastListener against what a Python listener does.

Run: python -m pytest bench/bench_listener.py --benchmark-disable-gc -q

``FastListener.feed_many`` runs the listener's C receive path (classify, count, hand
OTHER to the hook) N times in a C loop, so the figure is the per-message cost without
a Python call per message. The peers are the per-message work of a plain Python
listener: decode the JSON, look at ``method`` and ``params.type``.
"""

from __future__ import annotations

import json
from pathlib import Path

import orjson
import pytest

from drbfast import FastListener

SAMPLES = Path(__file__).resolve().parents[1] / "tests" / "samples"
N = 200_000

HEARTBEAT = b'{"params":{"type":"heartbeat"},"method":"heartbeat","jsonrpc":"2.0"}'
TICKER = json.dumps(
    json.loads((SAMPLES / "sub_ticker_live.json").read_bytes()), separators=(",", ":")
).encode()
REPLY = (
    b'{"jsonrpc":"2.0","id":"~drbfast~000000000001","result":{"version":"1.2.26"},'
    b'"usIn":1732000000000000,"usOut":1732000000000031,"usDiff":31,"testnet":false}'
)
MESSAGES = {"heartbeat": HEARTBEAT, "ticker": TICKER, "engine_reply": REPLY}


def _python_json(payload: bytes) -> bool:
    msg = json.loads(payload)
    return msg.get("method") == "heartbeat" and msg["params"].get("type") == "test_request"


def _python_orjson(payload: bytes) -> bool:
    msg = orjson.loads(payload)
    return msg.get("method") == "heartbeat" and msg["params"].get("type") == "test_request"


@pytest.mark.parametrize("name", list(MESSAGES))
def test_drbfast_listener(benchmark, name: str) -> None:
    benchmark.group = f"receive-path {name}"
    payload = MESSAGES[name]
    listener = FastListener(lambda p, b, lane, ch, rx: None)
    feed_many = listener.feed_many
    ns = benchmark(feed_many, payload, N)
    benchmark.extra_info["ns_per_message_in_c_loop"] = ns


@pytest.mark.parametrize("name", list(MESSAGES))
@pytest.mark.parametrize("decoder", [_python_json, _python_orjson], ids=["json", "orjson"])
def test_python_listener(benchmark, name: str, decoder) -> None:
    benchmark.group = f"receive-path {name}"
    payload = MESSAGES[name]

    def run() -> None:
        for _ in range(N):
            decoder(payload)

    benchmark(run)
