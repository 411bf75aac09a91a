"""Encode cost of one order frame: drbfast's template encoder beside json.dumps and
orjson.dumps of the same request dict.

Run (not collected by a plain ``pytest``):

    taskset -c 1 python -m pytest bench/bench_orders.py --benchmark-disable-gc \
        --benchmark-min-time=0.0005 --benchmark-columns=min,median,mean,rounds -q

The drbfast row includes validation (``order_params``) as ``Client.place`` does it.
"""

from __future__ import annotations

import json
from typing import Any

import orjson
import pytest

from drbfast.orders import encode_order, order_params

ARGS: dict[str, Any] = {"price": 86_775.5, "type": "limit", "label": "drb-a1b2c3-1042", "post_only": True}


def drbfast_encode() -> bytes:
    return encode_order(1042, "private/buy", order_params("BTC-PERPETUAL", 120, **ARGS))


def _request() -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": 1042, "method": "private/buy",
            "params": {"instrument_name": "BTC-PERPETUAL", "amount": 120, **ARGS}}


def json_encode() -> bytes:
    return json.dumps(_request(), separators=(",", ":")).encode()


def orjson_encode() -> bytes:
    return orjson.dumps(_request())


@pytest.mark.benchmark(group="order encode")
@pytest.mark.parametrize("fn", [drbfast_encode, json_encode, orjson_encode], ids=["drbfast", "json", "orjson"])
def test_encode(benchmark: Any, fn: Any) -> None:
    assert json.loads(benchmark(fn)) == json.loads(json_encode())
