"""``drbfast demo``: what drbfast does, in a few seconds, with no account and no network.

It starts the embedded emulator, connects with heartbeats on, subscribes to a book and
a ticker and shows live progress. Then it floods the connection with book updates
while the consumer is slow, with a ``test_request`` every 100 notifications, and shows
that each one is still answered at once. Round trips are timed on the emulator's side.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
from typing import Any

from .client import connect
from .emulator import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, Emulator, EmulatorConfig

__all__ = ["run_demo"]


def _pct(values: list[int], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] / 1000.0


class _Out:
    def __init__(self, color: bool) -> None:
        self.tty = sys.stdout.isatty()
        self.color = color and self.tty

    def bold(self, text: str) -> str:
        return f"\033[1m{text}\033[0m" if self.color else text

    def progress(self, line: str) -> None:
        if self.tty:
            sys.stdout.write("\r\033[K" + line)
        else:
            sys.stdout.write(line + "\n")
        sys.stdout.flush()

    def done(self) -> None:
        if self.tty:
            sys.stdout.write("\n")


async def _demo(seconds: float, heartbeat: float, out: _Out) -> int:
    # The demo's extra test_requests are answered with public/test, which Deribit charges
    # like any request: give the emulator's credit pool room for them.
    cfg = EmulatorConfig(min_heartbeat=min(heartbeat, 1.0), record=False, tick_interval=0.02,
                         credit_cap=10_000_000, credit_refill=1_000_000.0)
    async with Emulator(cfg) as emu:
        print(out.bold("drbfast demo") + f": embedded Deribit emulator at {emu.url}")
        print(f"  connect, auth (client_signature), set_heartbeat({heartbeat:g} s), cancel-on-disconnect, subscribe book + ticker")
        async with connect(emu.url, client_id=DEMO_CLIENT_ID, client_secret=DEMO_CLIENT_SECRET, heartbeat=heartbeat,
                           cancel_on_disconnect="connection") as client:
            received = [0]

            def on_data(channel: str, data: Any) -> None:
                received[0] += 1

            # (the flood below uses book.BTC-PERPETUAL.raw; a 100ms book of the same
            # instrument would rightly see the flood's change_ids as a gap)
            await client.subscribe("book.ETH-PERPETUAL.100ms", "ticker.BTC-PERPETUAL.100ms", "trades.BTC-PERPETUAL.100ms",
                                   "book.BTC-26DEC26.100ms", callback=on_data)
            book = await client.order_book("BTC-26DEC26")  # a local book, kept from the feed in C
            conn = emu.connections[-1]
            # Besides the heartbeat cycle, the emulator sends extra test_requests at 50 Hz
            # so a few seconds give enough round trips for percentiles.
            idle_phase = max(1.0, seconds * 0.5)
            extra = emu.faults.send_test_requests(conn, count=int(idle_phase * 50), rate_hz=50, deadline=heartbeat)
            t0 = time.monotonic()
            last_n, last_t = 0, t0
            while time.monotonic() - t0 < idle_phase:
                await asyncio.sleep(0.25)
                now = time.monotonic()
                rate = (received[0] - last_n) / (now - last_t)
                last_n, last_t = received[0], now
                rtts = conn.test_request_rtts_ns
                top = (f"{book.best_bid[1]:g} @ {book.best_bid[0]:g} / {book.best_ask[1]:g} @ {book.best_ask[0]:g}"
                       if book.best_bid and book.best_ask else "-")
                out.progress(f"  [{now - t0:4.1f}s] {received[0]:6d} notifications ({rate:6.0f}/s)  "
                             f"test_requests answered {client.stats.replies_sent:4d}  reply p50 {_pct(rtts, .5):6.1f} us  p99 {_pct(rtts, .99):6.1f} us"
                             f"  {book.instrument} {top}")
            out.done()
            extra.cancel()
            idle_rtts = list(conn.test_request_rtts_ns)
            idle_msgs, idle_time = received[0], time.monotonic() - t0

            print(f"  now a flood: 40,000 book updates as fast as the socket takes them, a test_request every 100,")
            print(f"  and a consumer that spends 20 us on every message (slower than the feed)")

            def slow(channel: str, data: Any) -> None:
                end = time.perf_counter() + 20e-6
                while time.perf_counter() < end:
                    pass

            flood_sub = await client.subscribe("book.BTC-PERPETUAL.raw", callback=slow)
            flood = await emu.faults.flood(conn, count=40_000, test_request_every=100, timeout=max(30.0, seconds * 5))
            # let the consumer catch up before the summary
            t_wait = time.monotonic()
            while client.stats.backlog and time.monotonic() - t_wait < 30:
                await asyncio.sleep(0.05)
            backlog_peak = client.stats.backlog_peak
            await flood_sub.unsubscribe()
            stats = client.stats
            alive = client.connected and conn.close_code is None

    fr = flood.rtts_ns
    rows = [
        ("phase", "notifications", "test_requests", "reply p50", "reply p99", "reply max"),
        ("steady", f"{idle_msgs} ({idle_msgs / idle_time:,.0f}/s)", f"{len(idle_rtts)}", f"{_pct(idle_rtts, .5):.1f} us", f"{_pct(idle_rtts, .99):.1f} us", f"{max(idle_rtts, default=0) / 1000:.1f} us"),
        ("flood", f"{flood.sent} ({flood.rate:,.0f}/s)", f"{len(fr)}", f"{_pct(fr, .5):.1f} us", f"{_pct(fr, .99):.1f} us", f"{max(fr, default=0) / 1000:.1f} us"),
    ]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    print()
    for i, row in enumerate(rows):
        line = "  ".join(cell.ljust(w) for cell, w in zip(row, widths))
        print("  " + (out.bold(line) if i == 0 else line))
    print()
    print(f"  test_requests answered {stats.replies_sent}/{stats.test_requests}; consumer backlog peaked at {backlog_peak:,} messages "
          f"({stats.queued_bytes_peak / 1e6:.1f} MB; the socket is never paused, the bound is bytes); book resets "
          f"{stats.book_resets} (each restarted from a fresh snapshot); reconnects {stats.reconnects}; "
          f"connection {'alive' if alive else 'LOST'}")
    if fr:
        print(f"  under the flood the median answer took {statistics.median(fr) / 1000:.0f} us while the consumer was "
              f"{backlog_peak:,} messages behind: heartbeats never wait for user code.")
    return 0 if alive and stats.replies_sent == stats.test_requests and len(fr) >= flood.test_requests else 1


def run_demo(seconds: float = 6.0, heartbeat: float = 1.0, color: bool = True) -> int:
    """Run the demo; returns the exit status (0 when the connection stayed up)."""
    try:
        return asyncio.run(_demo(seconds, heartbeat, _Out(color)))
    except KeyboardInterrupt:
        return 130


async def _coinbase_demo(heartbeat: float) -> int:
    from .emulator import EmulatorConfig as _Config
    from .gateway import connect_coinbase

    async with Emulator(_Config(gateway=True, min_heartbeat=min(heartbeat, 1.0), record=False, tick_interval=0.05)) as emu:
        name, pem = emu.add_cdp_key("ed25519")
        print(f"drbfast demo --coinbase: the emulator as Coinbase's Deribit gateway, trading {emu.url}, streams {emu.streams_url}")
        print(f"  a test CDP key {name} (Ed25519) signs a JWT for public/auth (grant coinbase_cdp); the key never leaves this process")
        async with await connect_coinbase(name, pem, trading_url=emu.url, streams_url=emu.streams_url, heartbeat=heartbeat) as client:
            seen: dict[str, int] = {}
            await client.subscribe("ticker.BTC-PERPETUAL.100ms", "user.orders.BTC-PERPETUAL.raw",
                                   callback=lambda ch, d: seen.__setitem__(ch, seen.get(ch, 0) + 1))
            book = await client.order_book("BTC-PERPETUAL")
            order = await client.buy("BTC-PERPETUAL", 10, price=50_000.0, post_only=True)
            await asyncio.sleep(max(1.0, heartbeat * 2.5))
            cancelled = await client.cancel(order.order.order_id)
            await asyncio.sleep(0.2)
            t, m = client.trading.stats, client.market.stats
            print(f"  streams host: ticker x{seen.get('ticker.BTC-PERPETUAL.100ms', 0)}, local book bid {book.best_bid} ask {book.best_ask}")
            print(f"  trading host: order {order.order.order_id} {order.order.order_state} -> {cancelled.order_state}, "
                  f"user.orders x{seen.get('user.orders.BTC-PERPETUAL.raw', 0)}")
            print(f"  test_requests answered: trading {t.replies_sent}/{t.test_requests}, streams {m.replies_sent}/{m.test_requests}")
            ok = client.connected and t.replies_sent == t.test_requests and m.replies_sent == m.test_requests
    return 0 if ok else 1


def run_coinbase_demo(heartbeat: float = 1.0) -> int:
    """``drbfast demo --coinbase``: both gateway hosts against the emulator."""
    import importlib.util

    if importlib.util.find_spec("cryptography") is None:
        print("drbfast demo --coinbase: CDP keys need the cryptography package: pip install \"drbfast[coinbase]\"",
              file=sys.stderr)
        return 2
    try:
        return asyncio.run(_coinbase_demo(heartbeat))
    except KeyboardInterrupt:
        return 130
