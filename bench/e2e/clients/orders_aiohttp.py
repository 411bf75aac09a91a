"""Orders over aiohttp's WebSocket client with json: a reader task parses every
message and matches replies by id; the orders are sent with ``await ws.send_str``."""

from __future__ import annotations

import argparse
from typing import Any, AsyncIterator

import aiohttp

from .common import run, ssl_context, url
from .orders_common import order_args, stream_orders

O = order_args()


async def texts(ws: aiohttp.ClientWebSocketResponse) -> AsyncIterator[str]:
    """The TEXT messages, until anything else (a close) arrives."""
    async for m in ws:
        if m.type != aiohttp.WSMsgType.TEXT:
            return
        yield m.data


async def main(args: argparse.Namespace) -> tuple[int, dict[str, Any]]:
    async with aiohttp.ClientSession() as session, \
            session.ws_connect(url(args), ssl=ssl_context(args) or False, compress=0, max_msg_size=0, autoping=True,
                               timeout=aiohttp.ClientWSTimeout(ws_close=1.0)) as ws:
        return await stream_orders(O, args.cost_us / 1e6, ws.send_str, texts(ws), (aiohttp.ClientError, ConnectionError), "ah")


if __name__ == "__main__":
    run(main)
