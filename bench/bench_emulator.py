"""How fast the emulator pushes notifications to one client (it must not be the
bottleneck of our own benchmarks: target 200,000/s).

Run: python bench/bench_emulator.py [COUNT]
"""

from __future__ import annotations

import asyncio
import sys
import time

from picows import WSListener, ws_connect

from drbfast.emulator import Emulator, EmulatorConfig


class Counter(WSListener):  # type: ignore[misc]
    n = 0

    def on_ws_frame(self, transport, frame) -> None:  # type: ignore[no-untyped-def]
        self.n += 1


async def main(count: int) -> None:
    async with Emulator(EmulatorConfig(record=False)) as emu:
        _, listener = await ws_connect(Counter, emu.url)
        conn = await emu.wait_for_connection(1)
        result = await emu.faults.flood(conn, count=count, timeout=60)
        t0 = time.monotonic()
        while listener.n < count and time.monotonic() - t0 < 30:
            await asyncio.sleep(0.01)
        print(f"emulator: {result.sent} notifications (~1 KB) in {result.seconds:.2f} s = {result.rate:,.0f}/s; "
              f"client received {listener.n}")


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 300_000))
