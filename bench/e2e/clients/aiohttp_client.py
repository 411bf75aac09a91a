"""aiohttp's WebSocket client with json."""

from __future__ import annotations

import argparse
import json

import aiohttp

from .common import READY, PUBLIC_TEST, Deadline, busy, few_fields, run, ssl_context, url


async def main(args: argparse.Namespace) -> int:
    count = 0
    ids = 0
    cost = args.cost_us / 1e6
    deadline = Deadline(args.deadline_s)
    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(url(args), ssl=ssl_context(args) or False, compress=0, max_msg_size=0, autoping=True) as ws:
            await ws.send_str(READY)
            async for m in ws:
                if m.type != aiohttp.WSMsgType.TEXT or deadline.expired():
                    break
                msg = json.loads(m.data)
                method = msg.get("method")
                if method == "heartbeat":
                    if msg["params"]["type"] == "test_request":
                        ids += 1
                        await ws.send_str(PUBLIC_TEST % ids)
                elif method == "bench_end":
                    await ws.send_str("done")
                else:
                    count += 1
                    if args.decode == "few":
                        few_fields(msg)
                    busy(cost)
    return count


if __name__ == "__main__":
    run(main)
