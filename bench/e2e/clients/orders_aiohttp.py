"""Orders over aiohttp's WebSocket client with json: a reader task parses every
message and matches replies by id; the orders are sent with ``await ws.send_str``."""

from __future__ import annotations

import argparse
import asyncio
import json
from typing import Any

import aiohttp

from .common import READY, Deadline, run, ssl_context, url
from .orders_common import Inbox, Timings, drive, order_args, request

O = order_args()


async def main(args: argparse.Namespace) -> tuple[int, dict[str, Any]]:
    timings = Timings()
    inbox = Inbox(timings, {}, args.cost_us / 1e6)
    deadline = Deadline(O.seconds + O.grace_s + 1 if O.seconds else 0)
    async with aiohttp.ClientSession() as session, \
            session.ws_connect(url(args), ssl=ssl_context(args) or False, compress=0, max_msg_size=0, autoping=True,
                               timeout=aiohttp.ClientWSTimeout(ws_close=1.0)) as ws:

        async def reader() -> None:
            async for m in ws:
                if m.type != aiohttp.WSMsgType.TEXT or deadline.expired():
                    break
                answer = inbox.handle(json.loads(m.data))
                if answer is not None:
                    await ws.send_str(answer)

        async def send(req_id: int) -> None:
            await ws.send_str(json.dumps(request(req_id, f"ah-{req_id}")))

        await ws.send_str(READY)
        task = asyncio.create_task(reader())
        await drive(O, timings, send, inbox.waiters)
        figures = timings.figures()
        try:
            await ws.send_str("done")
        except (aiohttp.ClientError, ConnectionError):
            pass  # the server closes once its feed is over
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    return inbox.count, figures


if __name__ == "__main__":
    run(main)
