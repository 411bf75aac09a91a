"""The end-to-end benchmark: every client, each in its own process, against the same
minimal C server on 127.0.0.1, over TCP and TLS, with the C client as the floor.

    python -m bench.e2e.runner [--quick] [--plot FILE.png] [--json FILE] [--markdown FILE]
                               [--slow-only] [--slow-seconds S]
    drbfast bench [--quick] [--plot FILE.png]

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
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .build import BUILD, certificate, compile_c, mix, payload

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Client:
    name: str
    argv: tuple[str, ...]
    loop: str = ""

    @property
    def label(self) -> str:
        return f"{self.name} ({self.loop})" if self.loop else self.name


def clients(loops: list[str], client_exe: Path) -> list[Client]:
    out = [Client("C floor", (str(client_exe),))]
    py = sys.executable
    mods = [
        # lanes off: every message delivered, as the peers do (with the lanes, a book
        # flood that outruns the consumer is reset, and a rate would count skipped work)
        ("drbfast", "bench.e2e.clients.drbfast_client", ("--lanes", "off")),
        ("picows+orjson", "bench.e2e.clients.picows_client", ("--codec", "orjson")),
        ("picows+json", "bench.e2e.clients.picows_client", ("--codec", "json")),
        ("websockets+orjson", "bench.e2e.clients.websockets_client", ("--codec", "orjson")),
        ("websockets+json", "bench.e2e.clients.websockets_client", ("--codec", "json")),
        ("aiohttp+json", "bench.e2e.clients.aiohttp_client", ()),
    ]
    for loop in loops:
        for name, mod, extra in mods:
            out.append(Client(name, (py, "-m", mod, *extra, "--loop", loop), loop))
    return out


@dataclass
class Settings:
    idle: int
    warmup: int
    throughput: int
    flood: int
    every: int = 100
    timeout: float = 240.0


@dataclass
class Result:
    client: str
    transport: str
    placement: str
    mode: str
    figures: dict[str, Any] = field(default_factory=dict)
    error: str | None = None


def run_one(client: Client, *, server: Path, mode: str, tls: bool, placement: str, s: Settings, decode: str = "few",
            rtt_file: Path | None = None, sndbuf: int = 0, client_args: tuple[str, ...] = (),
            server_args: tuple[str, ...] = (), shown: str | None = None) -> Result:
    """One server process and one client process; returns the server's figures (and
    the client's own JSON line under "client")."""
    cert, key = certificate()
    srv_cmd = [str(server), "--port", "0", "--mode", "throughput" if mode.startswith("throughput") else mode, *server_args]
    if mode in ("slow", "serve"):
        pass
    elif mode == "idle":
        srv_cmd += ["--count", str(s.idle), "--warmup", str(s.warmup)]
    elif mode == "flood":
        srv_cmd += ["--count", str(s.flood), "--every", str(s.every), "--payload", str(payload())]
        if sndbuf:
            srv_cmd += ["--sndbuf", str(sndbuf)]
    else:
        srv_cmd += ["--count", str(s.throughput), "--payload", str(payload())]
    if tls:
        srv_cmd += ["--cert", str(cert), "--key", str(key)]
    if rtt_file is not None:
        srv_cmd += ["--out", str(rtt_file)]
    taskset = shutil.which("taskset")
    srv_cpu, cli_cpu = ("0", "0") if placement == "same-core" else ("0", "1")
    if taskset:
        srv_cmd = [taskset, "-c", srv_cpu, *srv_cmd]
    if shown is None:
        shown = mode if mode != "throughput" else f"throughput-{decode}"
        if sndbuf:
            shown += f"-sndbuf{sndbuf // 1024}k"
    result = Result(client.label, "tls" if tls else "tcp", placement, shown)
    srv = subprocess.Popen(srv_cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    cli = None
    try:
        assert srv.stdout is not None
        first = json.loads(srv.stdout.readline() or "{}")
        port = first.get("listening")
        if not port:
            result.error = "server did not start: " + (srv.stderr.read() if srv.stderr else "")
            return result
        cli_cmd = list(client.argv) + ["--port", str(port)]
        if client.name == "C floor":
            if tls:
                cli_cmd += ["--tls", str(cert)]
        else:
            cli_cmd += ["--decode", decode, *client_args]
            if tls:
                cli_cmd += ["--tls", str(cert)]
        if taskset:
            cli_cmd = [taskset, "-c", cli_cpu, *cli_cmd]
        env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
        cli = subprocess.Popen(cli_cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT)
        try:
            line = srv.stdout.readline()
            srv.wait(timeout=s.timeout)
        except subprocess.TimeoutExpired:
            result.error = "timed out"
            return result
        if not line:
            err = srv.stderr.read() if srv.stderr else ""
            cerr = ""
            try:
                cerr = cli.communicate(timeout=5)[1]
            except subprocess.TimeoutExpired:
                pass
            result.error = f"no figures: {err.strip()[:200]} {cerr.strip()[-300:]}"
            return result
        result.figures = json.loads(line)
        try:
            out, _ = cli.communicate(timeout=30)
            lines = [x for x in out.splitlines() if x.startswith("{")]
            if lines:
                result.figures["client"] = json.loads(lines[-1])
        except (subprocess.TimeoutExpired, ValueError):
            pass
        return result
    finally:
        for p in (cli, srv):
            if p is not None and p.poll() is None:
                p.kill()
                p.wait()


def have(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def measure(quick: bool, plot_dir: Path | None) -> list[Result]:
    server, client_exe = compile_c()
    loops = ["asyncio"] + (["uvloop"] if have("uvloop") and not quick else [])
    s = Settings(idle=300, warmup=50, throughput=5_000, flood=5_000) if quick else Settings(idle=5_000, warmup=1_000, throughput=100_000, flood=100_000)
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
            rtt_file = None
            if plot_dir is not None and mode == "idle" and not tls and placement == "same-core":
                rtt_file = plot_dir / f"rtt-{client.label.replace(' ', '_').replace('(', '').replace(')', '')}.txt"
            t0 = time.monotonic()
            r = run_one(client, server=server, mode=mode, tls=tls, placement=placement, s=s, decode=decode, rtt_file=rtt_file, sndbuf=sndbuf)
            r.figures["seconds"] = round(time.monotonic() - t0, 2)
            if rtt_file is not None:
                r.figures["rtt_file"] = str(rtt_file)
            results.append(r)
            status = r.error or ", ".join(f"{k}={v}" for k, v in r.figures.items() if k in ("p50_us", "p99_us", "rate"))
            print(f"  {r.client:28s} {r.transport} {r.placement:10s} {r.mode:16s} {status}", file=sys.stderr, flush=True)
    return results


SLOW_RATE = 10_000        # messages/s in the paced feed (~200 B each)
SLOW_COST_US = 500        # the consumer's busy time per message: 5x slower than the feed
SLOW_TR_MS = 100          # a test_request every 100 ms
FLOOD_SLOW_COST_US = 50   # the max-rate flood's consumer
FLOOD_SLOW_EVERY = 200


def slow_clients(client_exe: Path) -> list[Client]:
    py = sys.executable
    return [
        Client("drbfast", (py, "-m", "bench.e2e.clients.drbfast_client", "--loop", "asyncio"), "asyncio"),
        Client("drbfast lanes=False", (py, "-m", "bench.e2e.clients.drbfast_client", "--lanes", "off", "--loop", "asyncio"), "asyncio"),
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


def slow_table(results: list[Result]) -> str:
    """The slow-consumer figures: test_request answers (server side) and what each
    client delivered (drbfast's lanes: conflated, dropped, book resets)."""
    head = ["client", "mode", "test_requests", "p50 ms", "p99 ms", "max ms", "unanswered or > 1 s", "sent",
            "delivered", "conflated", "dropped", "book resets (changes dropped)", "peak RSS MB"]
    rows = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in results:
        if not r.mode.startswith(("slow-", "flood-")):
            continue
        f, c = r.figures, r.figures.get("client", {})
        if r.error:
            rows.append(f"| {r.client} | {r.mode} | error: {r.error[:80]} |" + " |" * (len(head) - 3))
            continue
        trs = f.get("test_requests", f.get("n", 0))
        late = f.get("over_1s", 0)
        rows.append("| " + " | ".join([
            r.client, r.mode, str(trs),
            f"{f.get('p50_us', 0) / 1000:.1f}", f"{f.get('p99_us', 0) / 1000:.1f}", f"{f.get('max_us', 0) / 1000:.1f}",
            str(late) if "over_1s" in f else "-", f"{f.get('sent', 0):,}",
            f"{c.get('notifications', 0):,}" if c else "-",
            f"{c.get('conflated', 0):,}" if "conflated" in c else "-",
            f"{c.get('dropped', 0):,}" if "dropped" in c else "-",
            f"{c.get('book_resets', 0):,} ({c.get('book_dropped', 0):,})" if "book_resets" in c else "-",
            f"{c.get('peak_rss_mb', 0):.0f}" if c else "-",
        ]) + " |")
    return "\n".join(rows)


def _get(results: list[Result], client: str, transport: str, placement: str, mode: str) -> dict[str, Any]:
    for r in results:
        if (r.client, r.transport, r.placement, r.mode) == (client, transport, placement, mode) and not r.error:
            return r.figures
    return {}


def table(results: list[Result]) -> str:
    """A markdown table: latencies in us with the ratio to the C floor; rates in msg/s
    with the ratio to websockets+orjson on the same loop."""
    labels = list(dict.fromkeys(r.client for r in results))
    head = ["client", "idle p50 us (x C)", "idle p99 us (x C)", "idle p50 cross-core", "thru few /s (x ws+orjson)", "thru full /s",
            "flood p50/p99 us", "flood x-core p50/p99 us", "flood x-core 128k p50/p99 us", "TLS idle p50 (x C)", "TLS thru few /s", "TLS flood p99 us"]
    rows = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    c_idle = _get(results, "C floor", "tcp", "same-core", "idle")
    c_tls = _get(results, "C floor", "tls", "same-core", "idle")

    def ratio(v: float | None, base: float | None) -> str:
        return f" ({v / base:.2f}x)" if v and base else ""

    for label in labels:
        loop = label[label.find("(") + 1:-1] if "(" in label else "asyncio"
        ref = _get(results, f"websockets+orjson ({loop})", "tcp", "same-core", "throughput-few").get("rate")
        idle = _get(results, label, "tcp", "same-core", "idle")
        cross = _get(results, label, "tcp", "cross-core", "idle")
        few = _get(results, label, "tcp", "same-core", "throughput-few")
        full = _get(results, label, "tcp", "same-core", "throughput-full")
        flood = _get(results, label, "tcp", "same-core", "flood")
        xflood = _get(results, label, "tcp", "cross-core", "flood")
        sflood = _get(results, label, "tcp", "cross-core", "flood-sndbuf128k")
        tidle = _get(results, label, "tls", "same-core", "idle")
        tfew = _get(results, label, "tls", "same-core", "throughput-few")
        tflood = _get(results, label, "tls", "same-core", "flood")

        def f(d: dict[str, Any], k: str, fmt: str = "{:.1f}") -> str:
            return fmt.format(d[k]) if k in d else "-"

        rows.append("| " + " | ".join([
            label,
            f(idle, "p50_us") + ratio(idle.get("p50_us"), c_idle.get("p50_us")),
            f(idle, "p99_us") + ratio(idle.get("p99_us"), c_idle.get("p99_us")),
            f(cross, "p50_us"),
            f(few, "rate", "{:,.0f}") + ratio(few.get("rate"), ref),
            f(full, "rate", "{:,.0f}"),
            f(flood, "p50_us", "{:.0f}") + "/" + f(flood, "p99_us", "{:.0f}"),
            f(xflood, "p50_us", "{:.0f}") + "/" + f(xflood, "p99_us", "{:.0f}"),
            f(sflood, "p50_us", "{:.0f}") + "/" + f(sflood, "p99_us", "{:.0f}"),
            f(tidle, "p50_us") + ratio(tidle.get("p50_us"), c_tls.get("p50_us")),
            f(tfew, "rate", "{:,.0f}"),
            f(tflood, "p99_us"),
        ]) + " |")
    return "\n".join(rows)


def plot(results: list[Result], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 5))
    for r in results:
        f = r.figures.get("rtt_file")
        if not f or not Path(f).exists():
            continue
        values = sorted(int(x) / 1000 for x in Path(f).read_text().split())
        if not values:
            continue
        ys = [i / len(values) for i in range(len(values))]
        style = "--" if "uvloop" in r.client else "-"
        width = 2.5 if r.client.startswith(("drbfast", "C floor")) else 1.2
        ax.plot(values, ys, style, label=r.client, linewidth=width)
    ax.set_xscale("log")
    ax.set_xlabel("test_request round trip, us (server-side, same core, TCP)")
    ax.set_ylabel("fraction of round trips")
    ax.set_title("Idle reply latency per client (CDF)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="drbfast bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="small counts, asyncio only, no cross-core (CI smoke; figures not meaningful)")
    p.add_argument("--plot", metavar="FILE.png", help="latency CDF per client")
    p.add_argument("--json", metavar="FILE", help="write every figure as JSON")
    p.add_argument("--markdown", metavar="FILE", help="write the table as markdown")
    p.add_argument("--slow-only", action="store_true", help="only the slow-consumer modes")
    p.add_argument("--slow-seconds", type=float, help="paced feed duration (default 30; 3 with --quick)")
    args = p.parse_args(argv)
    plot_dir = BUILD if args.plot else None
    print(f"drbfast bench: {'quick' if args.quick else 'full'} run; server and client pinned with taskset where available", file=sys.stderr)
    results = [] if args.slow_only else measure(args.quick, plot_dir)
    text = "" if args.slow_only else table(results)
    slow = measure_slow(args.quick, args.slow_seconds)
    results += slow
    text += ("\n\n" if text else "") + slow_table(slow)
    print(text)
    failed = [r for r in results if r.error]
    for r in failed:
        print(f"FAILED {r.client} {r.transport} {r.placement} {r.mode}: {r.error}", file=sys.stderr)
    if args.json:
        Path(args.json).write_text(json.dumps([r.__dict__ for r in results], indent=1))
    if args.markdown:
        Path(args.markdown).write_text(text + "\n")
    if args.plot and not args.slow_only:
        plot(results, Path(args.plot))
        print(f"drbfast bench: plot written to {args.plot}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
