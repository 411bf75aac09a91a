"""Orders over `websockets` (asyncio client) with json: a reader task parses every
message and matches replies by id; the orders are sent with ``await ws.send``."""

from __future__ import annotations

import argparse
from typing import Any

import websockets

from .common import run, ssl_context, url
from .orders_common import order_args, stream_orders

O = order_args()


async def main(args: argparse.Namespace) -> tuple[int, dict[str, Any]]:
    async with websockets.connect(url(args), ssl=ssl_context(args), compression=None, max_size=None, max_queue=None,
                                  close_timeout=1.0) as ws:
        return await stream_orders(O, args.cost_us / 1e6, ws.send, ws, (websockets.ConnectionClosed, ConnectionError), "ws")


if __name__ == "__main__":
    run(main)
