"""The measurements behind docs/TUNING.md, each a table of figures.

    python -m bench.tuning.run [EXPERIMENT...] [--rounds 3] [--count 5000] [--json FILE]

Experiments: loop, placement, gc, tcp, burn, python, connections, blocked (default: all).
Round trips are timed by the bench C server (bench/c/server.c, idle or flood mode) on its
side, against bench.tuning.idle_client (drbfast's FastListener on picows) or the C
client. Configurations of one experiment run interleaved, ``--rounds`` times; a table
shows the median over rounds of each percentile, and the spread of the p50 (min-max).
``python`` uses the venvs ``nox -s tests`` makes (.nox/tests-3-1X, with the source copy
each session built in); ``connections``
and ``blocked`` run the emulator in a process of its own.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.e2e.build import certificate, compile_c, payload

ROOT = Path(__file__).resolve().parents[2]
CLIENT = ("-m", "bench.tuning.idle_client")
SAME, CROSS, FREE = ("0", "0"), ("0", "1"), None
RESULTS: dict[str, Any] = {}


def pair(client: list[str], *, pin: tuple[str, str] | None = SAME, count: int, warmup: int, tls: bool = False,
         mode: str = "idle", every: int = 100, root: Path = ROOT) -> dict[str, float]:
    """One server and one client process (run from ``root``); the server's round trips, in us."""
    server, client_exe = compile_c()
    cert, key = certificate()
    with tempfile.NamedTemporaryFile(prefix="drbfast-rtt-", suffix=".txt") as out:
        srv_cmd = [str(server), "--port", "0", "--mode", mode, "--count", str(count), "--out", out.name]
        srv_cmd += ["--warmup", str(warmup)] if mode == "idle" else ["--every", str(every), "--payload", str(payload())]
        if tls:
            srv_cmd += ["--cert", str(cert), "--key", str(key)]
        taskset = shutil.which("taskset")
        if pin and taskset:
            srv_cmd = [taskset, "-c", pin[0], *srv_cmd]
        srv = subprocess.Popen(srv_cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        cli = None
        try:
            assert srv.stdout is not None
            port = json.loads(srv.stdout.readline())["listening"]
            argv = [str(client_exe)] if client == ["C"] else list(client)
            cli_cmd = [*argv, "--port", str(port)] + (["--tls", str(cert)] if tls else [])
            if pin and taskset:
                cli_cmd = [taskset, "-c", pin[1], *cli_cmd]
            env = {**os.environ, "PYTHONPATH": f"{root}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
            cli = subprocess.Popen(cli_cmd, cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            srv.wait(timeout=600)
            rtts = sorted(int(x) / 1000 for x in Path(out.name).read_text().split())
            try:
                said = json.loads((cli.communicate(timeout=30)[0] or "{}").strip().splitlines()[-1])
            except (subprocess.TimeoutExpired, ValueError, IndexError):
                said = {}
        finally:
            for p in (cli, srv):
                if p is not None and p.poll() is None:
                    p.kill()
                    p.wait()
    if not rtts:
        raise RuntimeError(f"no round trips: {srv.stderr.read() if srv.stderr else ''}")

    def q(f: float) -> float:
        return rtts[min(len(rtts) - 1, int(f * len(rtts)))]

    figures = {"p50": q(0.5), "p99": q(0.99), "p99.9": q(0.999), "max": rtts[-1], "n": len(rtts),
               "over_1ms": sum(1 for r in rtts if r > 1000)}
    for gen, p in (said.get("gc_pauses") or {}).items():  # the client's own GC timings
        figures[f"gen{gen} GCs"] = p["n"]
        figures[f"gen{gen} max ms"] = p["max_ms"]
    return figures


def compare(name: str, configs: dict[str, dict[str, Any]], rounds: int, cols: tuple[str, ...] = ("p50", "p99")) -> None:
    """Run each configuration ``rounds`` times, interleaved; print and keep the medians."""
    runs: dict[str, list[dict[str, float]]] = {k: [] for k in configs}
    for _ in range(rounds):
        for label, kw in configs.items():
            runs[label].append(pair(**kw))
    print(f"\n### {name}\n\n| configuration | " + " | ".join(f"{c} us" if c.startswith("p") or c == "max" else c for c in cols)
          + " | p50 spread us |\n|---|" + "---:|" * (len(cols) + 1))
    table = {}
    for label, rs in runs.items():
        med = {c: statistics.median(r.get(c, 0) for r in rs) for c in cols}
        spread = (min(r["p50"] for r in rs), max(r["p50"] for r in rs))
        table[label] = {**med, "p50_spread": spread, "runs": rs}
        print(f"| {label} | " + " | ".join(f"{med[c]:,.1f}" for c in cols) + f" | {spread[0]:.1f}-{spread[1]:.1f} |")
    RESULTS[name] = table


def py(*args: str, python: str = sys.executable) -> list[str]:
    return [python, *CLIENT, *args]


def have_uvloop() -> bool:
    import importlib.util

    return importlib.util.find_spec("uvloop") is not None


def exp_loop(a: argparse.Namespace) -> None:
    c = {"count": a.count, "warmup": a.warmup}
    configs: dict[str, dict[str, Any]] = {
        "C floor": {"client": ["C"], **c},
        "asyncio (picows default: aiofastnet transport)": {"client": py("--loop", "asyncio"), **c},
        "asyncio, the loop's own transport": {"client": py("--loop", "asyncio", "--transport", "loop"), **c},
    }
    if have_uvloop():
        configs["uvloop (aiofastnet transport)"] = {"client": py("--loop", "uvloop"), **c}
        configs["uvloop, uvloop's own transport"] = {"client": py("--loop", "uvloop", "--transport", "loop"), **c}
    compare("Event loop and transport, idle round trip, TCP, same core", configs, a.rounds)
    tls = {k: {**v, "tls": True} for k, v in configs.items()}
    compare("Event loop and transport, idle round trip, TLS 1.3, same core", tls, a.rounds)


def exp_placement(a: argparse.Namespace) -> None:
    c = {"count": a.count, "warmup": a.warmup}
    configs: dict[str, dict[str, Any]] = {}
    for label, client in (("C floor", ["C"]), ("drbfast asyncio", py("--loop", "asyncio"))) + (
            (("drbfast uvloop", py("--loop", "uvloop")),) if have_uvloop() else ()):
        for where, pin in (("same core", SAME), ("cross core", CROSS), ("not pinned", FREE)):
            configs[f"{label}, {where}"] = {"client": client, "pin": pin, **c}
    compare("CPU placement (taskset), idle round trip, TCP", configs, a.rounds)


def exp_gc(a: argparse.Namespace) -> None:
    c = {"count": a.count * 10, "warmup": a.warmup}
    app = ("--heap", "500000", "--churn", "100")
    configs = {
        "the listener alone": {"client": py(), **c},
        "500k-object heap + 100 cyclic dicts/ms, GC defaults": {"client": py(*app), **c},
        "... + gen-0 threshold 50,000": {"client": py(*app, "--gc-threshold", "50000"), **c},
        "... defaults + a full collection every 250 ms": {"client": py(*app, "--full-gc-every", "250"), **c},
        "... + gc.freeze() after start-up": {"client": py(*app, "--full-gc-every", "250", "--gc", "freeze"), **c},
    }
    compare("Garbage collector, idle round trip, TCP, same core (GC pauses timed in the client with gc.callbacks)", configs,
            a.rounds, ("p50", "p99", "p99.9", "max", "gen0 GCs", "gen0 max ms", "gen2 GCs", "gen2 max ms"))


def exp_tcp(a: argparse.Namespace) -> None:
    c = {"count": a.count, "warmup": a.warmup}
    configs = {
        "TCP_NODELAY on (picows' default, with TCP_QUICKACK)": {"client": py(), **c},
        "TCP_NODELAY off": {"client": py("--no-nodelay"), **c},
    }
    compare("TCP options, idle round trip, same core", configs, a.rounds, ("p50", "p99", "max"))


def exp_burn(a: argparse.Namespace) -> None:
    c = {"count": a.count, "warmup": a.warmup, "pin": FREE}
    configs = {
        "nothing else running": {"client": py(), **c},
        "pure-Python CPU work in a thread of the same process": {"client": py("--burn", "thread"), **c},
        "the same work in another process": {"client": py("--burn", "process"), **c},
    }
    compare("CPU-heavy work beside the loop, idle round trip, not pinned", configs, a.rounds, ("p50", "p99", "max"))


def exp_python(a: argparse.Namespace) -> None:
    c = {"count": a.count, "warmup": a.warmup}
    configs: dict[str, dict[str, Any]] = {"C floor": {"client": ["C"], **c}}
    for minor in ("3.10", "3.11", "3.12", "3.13"):
        venv = ROOT / ".nox" / f"tests-{minor.replace('.', '-')}"
        exe, src = venv / "bin" / "python", venv / "tmp" / "src"  # the session's venv and its source copy
        if exe.exists() and (src / "bench" / "tuning").is_dir():
            configs[f"Python {minor}, asyncio"] = {"client": py(python=str(exe)), "root": src, **c}
        else:
            print(f"python: no {exe.relative_to(ROOT)}; make it with `bash ci/nox.sh -s tests-{minor}`", file=sys.stderr)
    compare("Python version, idle round trip, TCP, same core (asyncio; uvloop is not in the test venvs)", configs, a.rounds)


async def _connections(count: int) -> dict[str, Any]:
    import drbfast

    emu = subprocess.Popen([sys.executable, "-m", "bench.tuning.flood_emulator", "--count", str(count)],
                           cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert emu.stdout is not None
        url = emu.stdout.readline().strip()
        lat: dict[str, list[float]] = {"market data connection": [], "separate orders connection": []}
        async with drbfast.connect(url, heartbeat=None, credits=None) as md, \
                drbfast.connect(url, heartbeat=None, credits=None) as orders:
            seen = 0

            def on_book(channel: str, data: Any) -> None:
                nonlocal seen
                seen += 1

            await md.subscribe("book.BTC-PERPETUAL.100ms", callback=on_book)
            deadline = time.monotonic() + 20
            while seen < count and time.monotonic() < deadline:
                for label, cl in (("market data connection", md), ("separate orders connection", orders)):
                    t0 = time.perf_counter()
                    await cl.call("public/get_time")
                    lat[label].append((time.perf_counter() - t0) * 1e6)
                await asyncio.sleep(0.002)
            peak = md.stats.backlog_peak
        return {"latency_us": lat, "notifications": seen, "backlog_peak": peak}
    finally:
        emu.kill()
        emu.wait()


def exp_connections(a: argparse.Namespace) -> None:
    rows = []
    for _ in range(a.rounds):
        rows.append(asyncio.run(_connections(30_000)))
    print("\n### Orders beside market data: public/get_time round trip while 30,000 ~1 KB book "
          "notifications arrive on the market data connection (drbfast.connect, subscribe(callback=))\n")
    print("| calls on | p50 us | p99 us | max us | calls |\n|---|---:|---:|---:|---:|")
    table = {}
    for label in rows[0]["latency_us"]:
        v = sorted(x for r in rows for x in r["latency_us"][label])
        q = {"p50": v[len(v) // 2], "p99": v[min(len(v) - 1, int(0.99 * len(v)))], "max": v[-1], "calls": len(v)}
        table[label] = q
        print(f"| {label} | {q['p50']:,.0f} | {q['p99']:,.0f} | {q['max']:,.0f} | {q['calls']} |")
    print(f"\n(backlog peak on the market data connection: {max(r['backlog_peak'] for r in rows):,} messages)")
    RESULTS["connections"] = table


async def _blocked(how: str, interval: int = 1, block: float = 3.0) -> dict[str, Any]:
    import drbfast

    emu = subprocess.Popen([sys.executable, "-m", "drbfast", "emulator", "--min-heartbeat", str(interval), "--duration", "60"],
                           cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    events: list[Any] = []
    try:
        assert emu.stdout is not None
        url = emu.stdout.readline().split()[-1]
        async with drbfast.connect(url, heartbeat=interval, reconnect=False, on_event=events.append) as client:
            deadline = time.monotonic() + 10
            while client.stats.replies_sent < 1 and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            before = client.stats.replies_sent
            t0 = time.monotonic()
            if how == "blocks the loop":
                _spin(block)
            else:
                await asyncio.to_thread(_spin, block)
            await asyncio.sleep(1.5 * interval)
            answered = client.stats.replies_sent - before
            closes = [e.detail for e in events if e.kind == "disconnected"]
        return {"work_s": round(time.monotonic() - t0 - 1.5 * interval, 2), "answered_during": answered,
                "close": (closes[0].get("close_code"), closes[0].get("close_reason")) if closes else None}
    finally:
        emu.kill()
        emu.wait()


def _spin(seconds: float) -> None:
    """Pure-Python CPU work for ``seconds`` (holds the GIL but for the switch interval)."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        sum(i * i for i in range(1000))


def exp_blocked(a: argparse.Namespace) -> None:
    print("\n### A blocked loop cannot answer test_requests (emulator, heartbeat interval 1 s, 3 s of CPU work)\n")
    print("| CPU work | test_requests answered meanwhile | connection |\n|---|---:|---|")
    table = {}
    for how in ("blocks the loop", "runs in asyncio.to_thread"):
        r = asyncio.run(_blocked(how))
        table[how] = r
        close = f"closed by the exchange: {r['close'][0]} {r['close'][1]!r}" if r["close"] else "stays up"
        print(f"| {how} | {r['answered_during']} | {close} |")
    RESULTS["blocked"] = table


EXPERIMENTS = {"loop": exp_loop, "placement": exp_placement, "gc": exp_gc, "tcp": exp_tcp, "burn": exp_burn,
               "python": exp_python, "connections": exp_connections, "blocked": exp_blocked}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("experiments", nargs="*", choices=[*EXPERIMENTS, []], default=[])
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--count", type=int, default=5000, help="timed round trips per run (gc and flood: 10x)")
    p.add_argument("--warmup", type=int, default=500)
    p.add_argument("--json", metavar="FILE")
    a = p.parse_args(argv)
    import platform

    print(f"python {platform.python_version()}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}, "
          f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    for name in a.experiments or list(EXPERIMENTS):
        EXPERIMENTS[name](a)
    if a.json:
        Path(a.json).write_text(json.dumps(RESULTS, indent=1, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
