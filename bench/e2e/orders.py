"""The order round trip (issue 12): send -> ack against the bench's C server in serve
mode, which acks private/buy as production does (bench/c/server.c).

    python -m bench.e2e.orders [--quick] [--markdown FILE] [--json FILE]

orders-idle:  server and client on one core; W warm-up then N orders, one at a time.
orders-flood: the slow mode's paced feed (~200 B messages at 10,000/s, a test_request
              every 100 ms) beside the orders; the client consumes the feed at 500 us a
              notification and places an order every 10 ms for the feed's duration.
Each client times its orders itself (perf_counter_ns before the send call to the ack
seen by user code); the server reports the test_request round trips under the flood.
Stacks: the C client (floor, idle only), drbfast fire-and-forget (place + on_ack) and
``await client.buy``, picows+orjson, websockets+json and aiohttp+json, on asyncio (and
drbfast on uvloop too when it is installed, in a full run).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from .build import BUILD, compile_c, mix
from .report import orders_table
from .common import Client, Result, Settings, have, run_one

IDLE = (2_000, 200)        # (orders, warm-up)
IDLE_QUICK = (200, 20)
FLOOD_RATE = 10_000        # feed messages/s
FLOOD_SECONDS = 10.0       # quick: 2
FLOOD_TR_MS = 100
FLOOD_COST_US = 500
FLOOD_EVERY_MS = 10
FLOOD_GRACE_S = 3.0


def orders_mix() -> Path:
    """mix() without its one reply (id 42, an id a client's own requests reach; the
    replies of this bench are the acks of the client's orders)."""
    src = mix()
    path = BUILD / "mix_200b_orders.jsonl"
    lines = [line for line in src.read_text().splitlines() if line and '"id":' not in line[:40]]
    text = "\n".join(lines) + "\n"
    if not path.exists() or path.read_text() != text:
        path.write_text(text)
    return path


def public_mix() -> Path:
    """orders_mix() without its private notifications (user.orders at ~1,050/s, which
    take the priority lane with the acks): what the ack path costs beside public
    market data alone."""
    path = BUILD / "mix_200b_public.jsonl"
    text = "".join(line + "\n" for line in orders_mix().read_text().splitlines() if '"channel":"user.' not in line)
    if not path.exists() or path.read_text() != text:
        path.write_text(text)
    return path


def mix_channels(path: Path) -> list[str]:
    """The channels of the feed's notifications, in order of first appearance."""
    out: dict[str, None] = {}
    for line in path.read_text().splitlines():
        msg = json.loads(line)
        if msg.get("method") == "subscription":
            out[msg["params"]["channel"]] = None
    return list(out)


def order_clients(client_exe: Path, quick: bool, orders: int, warmup: int) -> list[Client]:
    py = sys.executable
    out = [Client("C floor", (str(client_exe), "--orders", str(orders), "--warmup", str(warmup)))]
    loops = ["asyncio"] + (["uvloop"] if have("uvloop") and not quick else [])
    for loop in loops:
        out.append(Client("drbfast place", (py, "-m", "bench.e2e.clients.orders_drbfast", "--style", "place", "--loop", loop), loop))
        out.append(Client("drbfast await", (py, "-m", "bench.e2e.clients.orders_drbfast", "--style", "await", "--loop", loop), loop))
    peers = [
        ("picows+orjson", "bench.e2e.clients.orders_picows", ("--codec", "orjson")),
        ("websockets+json", "bench.e2e.clients.orders_websockets", ()),
        ("aiohttp+json", "bench.e2e.clients.orders_aiohttp", ()),
    ]
    for name, mod, extra in peers:
        out.append(Client(name, (py, "-m", mod, *extra, "--loop", "asyncio"), "asyncio"))
    return out


def measure_orders(quick: bool) -> list[Result]:
    """Every order client idle, then every Python one under the flood (same core)."""
    server, client_exe = compile_c()
    orders, warmup = IDLE_QUICK if quick else IDLE
    secs = 2.0 if quick else FLOOD_SECONDS
    feed, public = orders_mix(), public_mix()
    results: list[Result] = []
    for client in order_clients(client_exe, quick, orders, warmup):
        plan: list[tuple[str, tuple[str, ...], tuple[str, ...], float]] = [
            ("orders-idle", ("--seconds", "120"), ("--orders", str(orders), "--warmup", str(warmup)), 120.0),
        ]
        feeds = [] if client.name == "C floor" else [("orders-flood", feed)]
        if client.name.startswith("drbfast") and not quick:
            feeds.append(("orders-flood-public", public))
        for shown, path in feeds:
            plan.append((shown,
                         ("--seconds", str(secs), "--mix", str(path), "--rate", str(FLOOD_RATE), "--tr-ms", str(FLOOD_TR_MS)),
                         ("--seconds", str(secs), "--every-ms", str(FLOOD_EVERY_MS), "--grace-s", str(FLOOD_GRACE_S),
                          "--cost-us", str(FLOOD_COST_US), "--channels", ",".join(mix_channels(path))),
                         secs + FLOOD_GRACE_S))
        for shown, srv_args, cli_args, budget in plan:
            s = Settings(idle=0, warmup=0, throughput=0, flood=0, timeout=budget + 60)
            t0 = time.monotonic()
            r = run_one(client, server=server, mode="serve", tls=False, placement="same-core", s=s, decode="parse",
                        client_args=cli_args, server_args=srv_args, shown=shown)
            r.figures["seconds"] = round(time.monotonic() - t0, 2)
            c = r.figures.get("client", {})
            if not r.error and "order_n" not in c:
                r.error = "the client printed no order figures"
            results.append(r)
            status = r.error or (f"n={c.get('order_n')} p50={c.get('order_p50_us', 0):.1f}us p99={c.get('order_p99_us', 0):.1f}us "
                                 f"max={c.get('order_max_us', 0):.1f}us late={c.get('order_late')}")
            print(f"  {r.client:28s} {r.mode:14s} {status}", file=sys.stderr, flush=True)
    return results


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.e2e.orders", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="small counts, a 2 s flood, asyncio only")
    p.add_argument("--json", metavar="FILE", help="write every figure as JSON")
    p.add_argument("--markdown", metavar="FILE", help="write the table as markdown")
    args = p.parse_args(argv)
    results = measure_orders(args.quick)
    text = orders_table([r.__dict__ for r in results])
    print(text)
    if args.json:
        Path(args.json).write_text(json.dumps([r.__dict__ for r in results], indent=1))
    if args.markdown:
        Path(args.markdown).write_text(text + "\n")
    return 1 if any(r.error for r in results) else 0


if __name__ == "__main__":
    raise SystemExit(main())
