"""The emulator in a process of its own, flooding the first connection once it has
subscribed and a second connection is open (bench.tuning.run's ``connections``).

    python -m bench.tuning.flood_emulator [--count 30000] [--channel book.BTC-PERPETUAL.100ms]

Prints the URL on its first line, then one JSON line with what the flood sent, and exits.
"""

from __future__ import annotations

import argparse
import asyncio
import json

from drbfast.emulator import Emulator, EmulatorConfig


async def main(args: argparse.Namespace) -> None:
    # Credits out of the way: the run measures queueing, not the rate limit.
    cfg = EmulatorConfig(record=False, credit_cap=10**12, credit_refill=10**12)
    async with Emulator(cfg) as emu:
        print(emu.url, flush=True)
        md = await emu.wait_for_connection(1, timeout=30)
        await emu.wait_for_connection(2, timeout=30)
        for _ in range(3000):  # bounded: 30 s
            if args.channel in md.subscriptions:
                break
            await asyncio.sleep(0.01)
        await asyncio.sleep(args.delay)
        result = await emu.faults.flood(md, count=args.count, channel=args.channel)
        print(json.dumps({"sent": result.sent, "seconds": round(result.seconds, 3)}), flush=True)
        await asyncio.sleep(args.linger)


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--count", type=int, default=30_000)
    p.add_argument("--channel", default="book.BTC-PERPETUAL.100ms")
    p.add_argument("--delay", type=float, default=0.3)
    p.add_argument("--linger", type=float, default=5.0)
    asyncio.run(main(p.parse_args()))
