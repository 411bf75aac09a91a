"""The end-to-end benchmark: every client, each in its own process, against the same
minimal C server on 127.0.0.1, over TCP and TLS, with the C client as the floor.

    python -m bench.e2e.runner [--quick] [--plot FILE.png] [--json FILE] [--markdown FILE]
                               [--results bench/RESULTS.md] [--repeat N] [--slow-only]
                               [--no-orders] [--slow-seconds S]
    drbfast bench [--quick] [--plot FILE.png] [any of the options above]

The release figures: ``python -m bench.e2e.runner --results bench/RESULTS.md --json
bench/build/run.json`` rewrites RESULTS.md's end-to-end part and bench/latency.png and
bench/flood.png from the run (bench/e2e/report.py renders them; it can also re-render a
saved JSON). Idle and few-fields throughput run --repeat times (3): the median run is
kept, with the spread.

Order round trips (bench/e2e/orders.py): send -> ack as user code sees it, idle and
beside the paced feed with a slow consumer.

The slow-consumer part (always run; alone with --slow-only): a paced feed of ~200 B
messages at 10,000/s for --slow-seconds (30; 3 with --quick) to a consumer that spends
500 us on each, with a test_request every 100 ms; and the max-rate flood (~1 KB book
changes, a test_request every 200) to a 50 us consumer. The server reports test_request
round trips, the clients what they delivered (drbfast: conflated / dropped / book resets
from its lanes) and their peak RSS.

Placement: server and client pinned to the same core (taskset -c 0) for the headline
figures; idle latency is also measured across cores (server on 0, client on 1). Every
figure is read as a ratio to the C floor measured in the same run.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from .build import BUILD, compile_c, mix
from .common import Client, Result, Settings, have, run_one
from .orders import measure_orders
from .report import finish_run, main_table, median_run, new_run, orders_table, plot, slow_table, write

def clients(loops: list[str], client_exe: Path) -> list[Client]:
    out = [Client("C floor", (str(client_exe),))]
    py = sys.executable
    # (row, module, its arguments, the modes it runs: () for all)
    mods: list[tuple[str, str, tuple[str, ...], tuple[str, ...]]] = [
        # What users import, default options: drbfast.connect + subscribe(callback=),
        # and the drop-in websockets (the same user code as the websockets rows).
        ("drbfast.connect", "bench.e2e.clients.connect_client", (), ()),
        ("drbfast.connect lazy", "bench.e2e.clients.connect_client", ("--lazy",), ()),
        ("drbfast.websockets+orjson", "bench.e2e.clients.dropin_client", ("--codec", "orjson"), ()),
        ("drbfast.websockets+json", "bench.e2e.clients.dropin_client", ("--codec", "json"), ()),
        # The engine's own ceiling: FastListener with a hand-written simdjson hook.
        # lanes off: every message delivered, as the peers do (with the lanes, a book
        # flood that outruns the consumer is reset, and a rate would count skipped work)
        ("FastListener raw", "bench.e2e.clients.drbfast_client", ("--lanes", "off"), ()),
        # Throughput with every message handled: with the default lanes a book flood
        # that outruns the consumer is reset (most changes skipped, by design), so the
        # default rows' delivered rate says how much was shed, not how fast it works.
        ("drbfast.connect lazy lanes=False", "bench.e2e.clients.connect_client", ("--lazy", "--lanes", "off"), ("throughput",)),
        ("picows+simdjson", "bench.e2e.clients.picows_client", ("--codec", "simdjson"), ()),
        ("picows+orjson", "bench.e2e.clients.picows_client", ("--codec", "orjson"), ()),
        ("picows+json", "bench.e2e.clients.picows_client", ("--codec", "json"), ()),
        ("websockets+orjson", "bench.e2e.clients.websockets_client", ("--codec", "orjson"), ()),
        ("websockets+json", "bench.e2e.clients.websockets_client", ("--codec", "json"), ()),
        ("aiohttp+json", "bench.e2e.clients.aiohttp_client", (), ()),
    ]
    for loop in loops:
        for name, mod, extra, only in mods:
            out.append(Client(name, (py, "-m", mod, *extra, "--loop", loop), loop, only))
    return out


HEADLINE = {("idle", False, "same-core", "few", 0), ("throughput", False, "same-core", "few", 0)}


def settings(quick: bool) -> Settings:
    if quick:
        return Settings(idle=300, warmup=50, throughput=5_000, flood=5_000)
    return Settings(idle=5_000, warmup=1_000, throughput=100_000, flood=100_000)


def measure(quick: bool, plot_dir: Path | None, repeat: int = 1) -> list[Result]:
    """The classic modes for every client; the headline ones (idle and few-fields
    throughput, TCP, same core) ``repeat`` times, keeping the median run and the spread."""
    server, client_exe = compile_c()
    loops = ["asyncio"] + (["uvloop"] if have("uvloop") and not quick else [])
    s = settings(quick)
    missing = [m for m in ("websockets", "aiohttp", "orjson") if not have(m)]
    if missing:
        raise SystemExit(f"drbfast bench: install the peers first: pip install -e \".[bench]\" (missing {', '.join(missing)})")
    results: list[Result] = []
    # (mode, tls, placement, decode, server SO_SNDBUF)
    plan: list[tuple[str, bool, str, str, int]] = [
        ("idle", False, "same-core", "few", 0),
        ("throughput", False, "same-core", "few", 0),
        ("throughput", False, "same-core", "full", 0),
        ("flood", False, "same-core", "few", 0),
        ("idle", True, "same-core", "few", 0),
        ("throughput", True, "same-core", "few", 0),
        ("flood", True, "same-core", "few", 0),
    ]
    if not quick:
        # A flood on one core also measures the scheduler sharing it between a busy
        # server and a busy client; across cores, with a small server send buffer, the
        # queue sits on the client's side as it would behind a real exchange.
        plan.insert(1, ("idle", False, "cross-core", "few", 0))
        plan.append(("flood", False, "cross-core", "few", 0))
        plan.append(("flood", False, "cross-core", "few", 128 * 1024))
    for client in clients(loops, client_exe):
        for mode, tls, placement, decode, sndbuf in plan:
            if client.name == "C floor" and mode == "throughput" and decode == "full":
                continue  # the floor does not decode
            if client.modes and mode not in client.modes:
                continue
            rtt_file = None
            if plot_dir is not None and mode in ("idle", "flood") and not tls and placement == "same-core" and not sndbuf:
                rtt_file = plot_dir / f"rtt-{mode}-{client.label.replace(' ', '_').replace('(', '').replace(')', '')}.txt"
            times = repeat if (mode, tls, placement, decode, sndbuf) in HEADLINE else 1
            runs: list[Result] = []
            for _ in range(times):
                t0 = time.monotonic()
                r = run_one(client, server=server, mode=mode, tls=tls, placement=placement, s=s, decode=decode,
                            rtt_file=rtt_file, sndbuf=sndbuf)
                r.figures["seconds"] = round(time.monotonic() - t0, 2)
                if rtt_file is not None:
                    r.figures["rtt_file"] = str(rtt_file)
                runs.append(r)
            r = runs[0]
            good = [x.figures for x in runs if not x.error]
            if len(runs) > 1 and good:
                r = Result(r.client, r.transport, r.placement, r.mode,
                           median_run(good, "p50_us" if mode == "idle" else "rate"))
            results.append(r)
            status = r.error or ", ".join(f"{k}={v}" for k, v in r.figures.items() if k in ("p50_us", "p99_us", "rate"))
            print(f"  {r.client:32s} {r.transport} {r.placement:10s} {r.mode:16s} {status}", file=sys.stderr, flush=True)
    return results


SLOW_RATE = 10_000        # messages/s in the paced feed (~200 B each)
SLOW_COST_US = 500        # the consumer's busy time per message: 5x slower than the feed
SLOW_TR_MS = 100          # a test_request every 100 ms
FLOOD_SLOW_COST_US = 50   # the max-rate flood's consumer
FLOOD_SLOW_EVERY = 200


def slow_clients(client_exe: Path) -> list[Client]:
    py = sys.executable
    return [
        Client("drbfast.connect", (py, "-m", "bench.e2e.clients.connect_client", "--loop", "asyncio"), "asyncio"),
        Client("drbfast.websockets+json", (py, "-m", "bench.e2e.clients.dropin_client", "--codec", "json", "--loop", "asyncio"), "asyncio"),
        Client("FastListener lanes", (py, "-m", "bench.e2e.clients.drbfast_client", "--loop", "asyncio"), "asyncio"),
        Client("FastListener lanes=False", (py, "-m", "bench.e2e.clients.drbfast_client", "--lanes", "off", "--loop", "asyncio"), "asyncio"),
        Client("websockets+json", (py, "-m", "bench.e2e.clients.websockets_client", "--codec", "json", "--loop", "asyncio"), "asyncio"),
        Client("aiohttp+json", (py, "-m", "bench.e2e.clients.aiohttp_client", "--loop", "asyncio"), "asyncio"),
        Client("picows+json", (py, "-m", "bench.e2e.clients.picows_client", "--codec", "json", "--loop", "asyncio"), "asyncio"),
    ]


def measure_slow(quick: bool, seconds: float | None) -> list[Result]:
    """The slow-consumer modes, every peer, server and client on one core."""
    server, client_exe = compile_c()
    secs = seconds if seconds is not None else (3.0 if quick else 30.0)
    flood = 5_000 if quick else 100_000
    s = Settings(idle=0, warmup=0, throughput=0, flood=flood, every=FLOOD_SLOW_EVERY, timeout=secs + 240)
    results: list[Result] = []
    for client in slow_clients(client_exe):
        plan = [
            ("slow", "parse", (str(SLOW_COST_US), secs), ("--mix", str(mix()), "--rate", str(SLOW_RATE),
                                                              "--seconds", str(secs), "--tr-ms", str(SLOW_TR_MS)),
             f"slow-{SLOW_COST_US}us"),
            ("flood", "few", (str(FLOOD_SLOW_COST_US), 0), (), f"flood-{FLOOD_SLOW_COST_US}us"),
        ]
        for mode, decode, (cost, deadline), srv_args, shown in plan:
            t0 = time.monotonic()
            r = run_one(client, server=server, mode=mode, tls=False, placement="same-core", s=s, decode=decode,
                        client_args=("--cost-us", cost, "--deadline-s", str(deadline)), server_args=srv_args, shown=shown)
            r.figures["seconds"] = round(time.monotonic() - t0, 2)
            results.append(r)
            c = r.figures.get("client", {})
            status = r.error or (f"p50={r.figures.get('p50_us', 0) / 1000:.1f}ms p99={r.figures.get('p99_us', 0) / 1000:.1f}ms "
                                 f"max={r.figures.get('max_us', 0) / 1000:.1f}ms delivered={c.get('notifications')} rss={c.get('peak_rss_mb')}MB")
            print(f"  {r.client:28s} {r.mode:16s} {status}", file=sys.stderr, flush=True)
    return results


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="drbfast bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="small counts, asyncio only, no cross-core (CI smoke; figures not meaningful)")
    p.add_argument("--plot", metavar="FILE.png", help="idle latency CDF per client (flood.png, the CDF under a flood, beside it)")
    p.add_argument("--json", metavar="FILE", help="write the run (machine, versions, settings, every figure) as JSON")
    p.add_argument("--markdown", metavar="FILE", help="write the tables as markdown")
    p.add_argument("--results", metavar="RESULTS.md", help="replace the generated part of this file (bench/RESULTS.md)")
    p.add_argument("--repeat", type=int, default=None, help="runs of the headline modes (default 3; 1 with --quick)")
    p.add_argument("--slow-only", action="store_true", help="only the slow-consumer modes")
    p.add_argument("--no-orders", action="store_true", help="skip the order round-trip modes")
    p.add_argument("--slow-seconds", type=float, help="paced feed duration (default 30; 3 with --quick)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv if argv is not None else sys.argv[1:])
    repeat = args.repeat if args.repeat is not None else (1 if args.quick else 3)
    plot_dir = BUILD if args.plot or args.results else None
    command = "python -m bench.e2e.runner " + " ".join(argv if argv is not None else sys.argv[1:])
    s = settings(args.quick)
    run = new_run(command.strip(), {"idle": s.idle, "warmup": s.warmup, "throughput": s.throughput, "flood": s.flood,
                                    "every": s.every, "repeat": repeat, "quick": args.quick})
    print(f"drbfast bench: {'quick' if args.quick else 'full'} run; server and client pinned with taskset where available", file=sys.stderr)
    results = [] if args.slow_only else measure(args.quick, plot_dir, repeat)
    results += measure_slow(args.quick, args.slow_seconds)
    if not args.no_orders and not args.slow_only:
        results += measure_orders(args.quick)
    run["results"] = [r.__dict__ for r in results]
    finish_run(run)
    rows = run["results"]
    orders = orders_table(rows) if any(r.mode.startswith("orders-") for r in results) else ""
    text = "\n\n".join(t for t in (main_table(rows) if not args.slow_only else "", slow_table(rows), orders) if t)
    print(text)
    failed = [r for r in results if r.error]
    for r in failed:
        print(f"FAILED {r.client} {r.transport} {r.placement} {r.mode}: {r.error}", file=sys.stderr)
    if args.json:
        Path(args.json).write_text(json.dumps(run, indent=1))
    if args.markdown:
        Path(args.markdown).write_text(text + "\n")
    if args.results:
        write(run, Path(args.results))
        print(f"drbfast bench: wrote the generated part of {args.results}", file=sys.stderr)
    if plot_dir is not None and not args.slow_only:
        where = Path(args.plot).parent if args.plot else Path(args.results).parent
        where.mkdir(parents=True, exist_ok=True)
        for path in plot(run["results"], where):
            if args.plot and path.name == "latency.png" and Path(args.plot).name != "latency.png":
                path.replace(args.plot)
                path = Path(args.plot)
            print(f"drbfast bench: plot written to {path}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
