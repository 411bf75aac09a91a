"""`websockets` (asyncio client) with json or orjson: ``python -m ... --codec json``.
``consume`` is the user code; dropin_client.py runs the same code on drbfast.websockets."""

from __future__ import annotations

import argparse
import sys
from types import ModuleType

import websockets

from .common import READY, PUBLIC_TEST, Deadline, busy, few_fields, run, ssl_context, url

loads = __import__(sys.argv.pop(sys.argv.index("--codec") + 1) if "--codec" in sys.argv else "json").loads
if "--codec" in sys.argv:
    sys.argv.remove("--codec")


async def consume(websockets: ModuleType, args: argparse.Namespace) -> int:
    count = 0
    ids = 0
    cost = args.cost_us / 1e6
    deadline = Deadline(args.deadline_s)
    async with websockets.connect(url(args), ssl=ssl_context(args), compression=None, max_size=None, max_queue=None) as ws:
        await ws.send(READY)
        async for raw in ws:
            if deadline.expired():
                break
            msg = loads(raw)
            method = msg.get("method")
            if method == "heartbeat":
                if msg["params"]["type"] == "test_request":
                    ids += 1
                    await ws.send(PUBLIC_TEST % ids)
            elif method == "bench_end":
                await ws.send("done")
            else:
                count += 1
                if args.decode == "few":
                    few_fields(msg)
                busy(cost)
    return count


async def main(args: argparse.Namespace) -> int:
    return await consume(websockets, args)


if __name__ == "__main__":
    run(main)
