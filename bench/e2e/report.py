"""bench/RESULTS.md's end-to-end part, and the plots, written from a run's JSON.

    python -m bench.e2e.report RUN.json [--results bench/RESULTS.md] [--plot-dir bench]

The runner calls :func:`write` at the end of a run (``--results``); this module can also
re-render a saved run. Every figure in the generated text (tables, the targets table and
the sentences around them) is computed here from the JSON, so text and tables cannot
disagree. The part of RESULTS.md between the two markers below is replaced; the rest of
the file (pytest-benchmark suites, recorded by hand with their commands) is kept.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Any, Callable

BEGIN = "<!-- drbfast bench: generated from the run's JSON by bench/e2e/report.py; do not edit by hand -->"
END = "<!-- drbfast bench: end of the generated part -->"

PACKAGES = ("drbfast", "picows", "pysimdjson", "websockets", "aiohttp", "orjson", "uvloop", "Cython")

Row = dict[str, Any]


# ---------------------------------------------------------------- the machine

def _first_line(cmd: list[str]) -> str:
    exe = shutil.which(cmd[0])
    if exe is None:
        return "-"
    try:
        out = subprocess.run([exe, *cmd[1:]], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return "-"
    text = (out.stdout or out.stderr).strip().splitlines()
    return text[0] if text else "-"


def machine() -> dict[str, Any]:
    """What the figures depend on: CPU, cores, kernel, memory, load, versions."""
    cpu = "-"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gib = 0.0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_gib = int(line.split()[1]) / 1024 / 1024
    except OSError:
        pass
    versions: dict[str, str] = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    versions["cc"] = _first_line([os.environ.get("CC") or "cc", "--version"])
    versions["openssl"] = _first_line(["openssl", "version"])
    return {"cpu": cpu, "vcpus": os.cpu_count(), "kernel": platform.release(), "mem_gib": round(mem_gib, 1),
            "loadavg": list(os.getloadavg()) if hasattr(os, "getloadavg") else [], "versions": versions}


# ---------------------------------------------------------------- lookups

def find(results: list[Row], client: str, transport: str, placement: str, mode: str) -> dict[str, Any]:
    for r in results:
        if (r["client"], r["transport"], r["placement"], r["mode"]) == (client, transport, placement, mode) and not r.get("error"):
            return dict(r["figures"])
    return {}


def _loop(label: str) -> str:
    return label[label.rfind("(") + 1:-1] if label.endswith(")") else "asyncio"


def _fmt(d: dict[str, Any], key: str, fmt: str = "{:.1f}") -> str:
    return fmt.format(d[key]) if key in d else "-"


def _num(v: float | None) -> str:
    return "-" if v is None else f"{v:,.0f}"


def _ratio(v: float | None, base: float | None) -> str:
    return f" ({v / base:.2f}x)" if v and base else ""


def delivered_rate(d: dict[str, Any]) -> float | None:
    """Messages the consumer handled per second: the server's rate (sent over the time
    to the client's "done") times the share the client says it handled. A client that
    sheds (drbfast's lanes reset a book it cannot keep up with) is not credited for
    what it skipped."""
    rate, sent = d.get("rate"), d.get("sent")
    handled = d.get("client", {}).get("notifications")
    if not rate:
        return None
    if not sent or handled is None:
        return float(rate)
    return float(rate) * min(handled, sent) / sent


def _handled(d: dict[str, Any]) -> str:
    sent, handled = d.get("sent"), d.get("client", {}).get("notifications")
    if not sent or handled is None or handled >= 0.99 * sent:
        return ""
    return f" <{100 * handled / sent:.1f}% handled>"


def _spread(d: dict[str, Any], key: str, fmt: str) -> str:
    s = d.get("spread", {}).get(key)
    if not s or len(s) < 2:
        return ""
    return " [" + fmt.format(min(s)) + "-" + fmt.format(max(s)) + "]"


# ---------------------------------------------------------------- tables

def main_table(results: list[Row]) -> str:
    """Latencies in us with the ratio to the C floor; rates in msg/s with the ratio to
    websockets+orjson on the same loop. Brackets: the spread over the repeated runs."""
    labels = [lab for lab in dict.fromkeys(r["client"] for r in results
                                           if r["mode"] in ("idle", "throughput-few", "throughput-full", "flood"))]
    head = ["client", "idle p50 us (x C)", "idle p99 us (x C)", "idle p50 x-core", "thru few /s (x ws+orjson)",
            "thru full /s", "flood p50/p99 us", "flood x-core p50/p99 us", "flood x-core 128k p50/p99 us",
            "TLS idle p50 (x C)", "TLS thru few /s", "TLS flood p99 us"]
    rows = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    c_idle = find(results, "C floor", "tcp", "same-core", "idle")
    c_tls = find(results, "C floor", "tls", "same-core", "idle")
    for label in labels:
        ref = delivered_rate(find(results, f"websockets+orjson ({_loop(label)})", "tcp", "same-core", "throughput-few"))
        idle = find(results, label, "tcp", "same-core", "idle")
        cross = find(results, label, "tcp", "cross-core", "idle")
        few = find(results, label, "tcp", "same-core", "throughput-few")
        full = find(results, label, "tcp", "same-core", "throughput-full")
        flood = find(results, label, "tcp", "same-core", "flood")
        xflood = find(results, label, "tcp", "cross-core", "flood")
        sflood = find(results, label, "tcp", "cross-core", "flood-sndbuf128k")
        tidle = find(results, label, "tls", "same-core", "idle")
        tfew = find(results, label, "tls", "same-core", "throughput-few")
        tflood = find(results, label, "tls", "same-core", "flood")
        rows.append("| " + " | ".join([
            label,
            _fmt(idle, "p50_us") + _spread(idle, "p50_us", "{:.1f}") + _ratio(idle.get("p50_us"), c_idle.get("p50_us")),
            _fmt(idle, "p99_us") + _ratio(idle.get("p99_us"), c_idle.get("p99_us")),
            _fmt(cross, "p50_us"),
            _num(delivered_rate(few)) + _spread(few, "rate", "{:,.0f}") + _ratio(delivered_rate(few), ref) + _handled(few),
            _num(delivered_rate(full)) + _handled(full),
            _fmt(flood, "p50_us", "{:.0f}") + "/" + _fmt(flood, "p99_us", "{:.0f}"),
            _fmt(xflood, "p50_us", "{:.0f}") + "/" + _fmt(xflood, "p99_us", "{:.0f}"),
            _fmt(sflood, "p50_us", "{:.0f}") + "/" + _fmt(sflood, "p99_us", "{:.0f}"),
            _fmt(tidle, "p50_us") + _ratio(tidle.get("p50_us"), c_tls.get("p50_us")),
            _num(delivered_rate(tfew)) + _handled(tfew),
            _fmt(tflood, "p99_us", "{:.0f}"),
        ]) + " |")
    return "\n".join(rows)


def slow_table(results: list[Row]) -> str:
    """The slow-consumer figures: test_request answers (server side) and what each
    client delivered (drbfast's lanes: conflated, dropped, book resets)."""
    head = ["client", "mode", "test_requests", "p50 ms", "p99 ms", "max ms", "unanswered or > 1 s", "sent",
            "delivered", "conflated", "dropped", "book resets (changes dropped)", "peak RSS MB"]
    rows = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in results:
        if not re.fullmatch(r"(slow|flood)-\d+us", r["mode"]):
            continue  # (flood-sndbuf128k is the main table's)
        f, c = r["figures"], r["figures"].get("client", {})
        if r.get("error"):
            rows.append(f"| {r['client']} | {r['mode']} | error: {r['error'][:80]} |" + " |" * (len(head) - 3))
            continue
        trs = f.get("test_requests", f.get("n", 0))
        rows.append("| " + " | ".join([
            r["client"], r["mode"], str(trs),
            f"{f.get('p50_us', 0) / 1000:.1f}", f"{f.get('p99_us', 0) / 1000:.1f}", f"{f.get('max_us', 0) / 1000:.1f}",
            str(f["over_1s"]) if "over_1s" in f else "-", f"{f.get('sent', 0):,}",
            f"{c.get('notifications', 0):,}" if c else "-",
            f"{c.get('conflated', 0):,}" if "conflated" in c else "-",
            f"{c.get('dropped', 0):,}" if "dropped" in c else "-",
            f"{c.get('book_resets', 0):,} ({c.get('book_dropped', 0):,})" if "book_resets" in c else "-",
            f"{c.get('peak_rss_mb', 0):.0f}" if c else "-",
        ]) + " |")
    return "\n".join(rows)


def orders_table(results: list[Row]) -> str:
    """The order round trips (client side, us): per client and mode, the idle p50 as a
    multiple of the C floor's, the server's test_request p99 under the flood and the
    acks later than 1 s (or never)."""
    head = ["client", "mode", "orders", "p50 us", "p90 us", "p99 us", "max us", "p50 x C floor",
            "test_request p99 us", "late acks (> 1 s or none)"]
    rows = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    floor = find(results, "C floor", "tcp", "same-core", "orders-idle").get("client", {}).get("order_p50_us")
    for r in results:
        if not r["mode"].startswith("orders-"):
            continue
        if r.get("error"):
            rows.append(f"| {r['client']} | {r['mode']} | error: {r['error'][:80]} |" + " |" * (len(head) - 3))
            continue
        f, c = r["figures"], r["figures"].get("client", {})
        flood = r["mode"].startswith("orders-flood")
        p50 = c.get("order_p50_us", 0.0)
        sent = c.get("order_sent", c.get("order_n", 0))
        rows.append("| " + " | ".join([
            r["client"], r["mode"], f"{c.get('order_n', 0)}" + (f" of {sent}" if sent != c.get("order_n") else ""),
            f"{p50:.1f}", f"{c.get('order_p90_us', 0):.1f}", f"{c.get('order_p99_us', 0):.1f}",
            f"{c.get('order_max_us', 0):.1f}", f"{p50 / floor:.2f}x" if not flood and floor and p50 else "-",
            f"{f.get('p99_us', 0):.0f}" if flood else "-", str(c.get("order_late", 0)) if flood else "-",
        ]) + " |")
    return "\n".join(rows)


# ---------------------------------------------------------------- targets

Target = tuple[str, str, "bool | None"]


def _p50(results: list[Row], label: str, mode: str = "idle", transport: str = "tcp") -> float | None:
    v = find(results, label, transport, "same-core", mode).get("p50_us")
    return float(v) if v else None


def targets(results: list[Row], drb: str = "drbfast.connect") -> list[Target]:
    """Every target the issues set, measured against this run (None: not measured)."""
    out: list[Target] = []

    def add(name: str, value: float | None, ok: Callable[[float], bool], fmt: str) -> None:
        out.append((name, fmt.format(value) if value is not None else "not measured",
                    ok(value) if value is not None else None))

    def ratio(a: float | None, b: float | None) -> float | None:
        return a / b if a and b else None

    c = _p50(results, "C floor")
    c99 = find(results, "C floor", "tcp", "same-core", "idle").get("p99_us")
    for row in (drb, "FastListener raw"):
        a, u = f"{row} (asyncio)", f"{row} (uvloop)"
        add(f"{row}: idle RTT within 1.3x of C (asyncio)", ratio(_p50(results, a), c), lambda x: x <= 1.3, "{:.2f}x")
        add(f"{row}: idle RTT within 1.15x of C (uvloop)", ratio(_p50(results, u), c), lambda x: x <= 1.15, "{:.2f}x")
    a, u = f"{drb} (asyncio)", f"{drb} (uvloop)"
    add(f"{drb}: idle 3.5x lower than websockets+json (asyncio)", ratio(_p50(results, "websockets+json (asyncio)"), _p50(results, a)),
        lambda x: x >= 3.5, "{:.1f}x")
    add(f"{drb}: idle 2.8x lower than aiohttp+json (asyncio)", ratio(_p50(results, "aiohttp+json (asyncio)"), _p50(results, a)),
        lambda x: x >= 2.8, "{:.1f}x")
    add(f"{drb}: idle 2.2x lower than websockets+json (uvloop)", ratio(_p50(results, "websockets+json (uvloop)"), _p50(results, u)),
        lambda x: x >= 2.2, "{:.1f}x")
    add(f"{drb}: idle 1.6x lower than aiohttp+json (uvloop)", ratio(_p50(results, "aiohttp+json (uvloop)"), _p50(results, u)),
        lambda x: x >= 1.6, "{:.1f}x")
    p99 = find(results, a, "tcp", "same-core", "idle").get("p99_us")
    add(f"{drb}: idle p99 within 2x of the C floor's p99 (asyncio)", ratio(p99, c99), lambda x: x <= 2.0, "{:.2f}x")

    def rate(label: str, mode: str = "throughput-few") -> float | None:
        return delivered_rate(find(results, label, "tcp", "same-core", mode))

    # Throughput counts what the consumer handled; the row that handles every message
    # (no lanes) is the one comparable with the peers.
    thru = f"{drb} lazy lanes=False"
    for loop in ("asyncio", "uvloop"):
        for row in (thru, "FastListener raw"):
            mine = rate(f"{row} ({loop})")
            add(f"{row}: few-fields throughput 2.5x websockets+orjson ({loop})", ratio(mine, rate(f"websockets+orjson ({loop})")),
                lambda x: x >= 2.5, "{:.2f}x")
            add(f"{row}: few-fields throughput 6x websockets+json ({loop})", ratio(mine, rate(f"websockets+json ({loop})")),
                lambda x: x >= 6.0, "{:.2f}x")
            add(f"{row}: few-fields throughput ahead of picows+orjson ({loop})", ratio(mine, rate(f"picows+orjson ({loop})")),
                lambda x: x > 1.0, "{:.2f}x")
    flood = find(results, a, "tcp", "same-core", "flood").get("p99_us")
    add(f"{drb}: reply p99 under a flood under 1 ms (asyncio, same core)", flood / 1000 if flood else None,
        lambda x: x < 1.0, "{:.1f} ms")
    peers = [find(results, f"{p} (asyncio)", "tcp", "same-core", "flood").get("p99_us")
             for p in ("websockets+json", "websockets+orjson", "aiohttp+json", "picows+json", "picows+orjson")]
    peers_ms = [p / 1000 for p in peers if p]
    add("peers take 50 ms and more under the same flood (lowest peer p99)", min(peers_ms) if peers_ms else None,
        lambda x: x >= 50, "{:.1f} ms")
    tls = ratio(_p50(results, a, transport="tls"), _p50(results, "C floor", transport="tls"))
    add(f"{drb}: TLS idle RTT within 1.3x of C (asyncio; the plain-TCP target applied to TLS)", tls, lambda x: x <= 1.3, "{:.2f}x")

    def slow(label: str, mode: str) -> dict[str, Any]:
        for r in results:
            if r["client"] == label and r["mode"] == mode and not r.get("error"):
                return dict(r["figures"])
        return {}

    f50 = slow(f"{drb} (asyncio)", "flood-50us")
    ws50 = slow("websockets+json (asyncio)", "flood-50us")
    add(f"{drb}: flood with a 50 us consumer, test_request p99 at most 50 ms", f50["p99_us"] / 1000 if f50 else None,
        lambda x: x <= 50, "{:.1f} ms")
    add(f"{drb}: flood with a 50 us consumer, p99 5x lower than websockets+json",
        ratio(ws50.get("p99_us"), f50.get("p99_us")), lambda x: x >= 5, "{:.1f}x")
    s500 = slow(f"{drb} (asyncio)", "slow-500us")
    add(f"{drb}: 5x-slow consumer for the feed's duration, test_requests unanswered or > 1 s",
        float(s500["over_1s"]) if "over_1s" in s500 else None, lambda x: x == 0, "{:.0f}")
    add(f"{drb}: 5x-slow consumer, test_request p99 at most 10 ms", s500["p99_us"] / 1000 if s500 else None,
        lambda x: x <= 10, "{:.1f} ms")

    def order(label: str, mode: str) -> dict[str, Any]:
        for r in results:
            if r["client"] == label and r["mode"] == mode and not r.get("error"):
                return dict(r["figures"].get("client", {}))
        return {}

    c_ord = order("C floor", "orders-idle").get("order_p50_us")
    add("orders: fire-and-forget + on_ack within 1.3x of C (uvloop)",
        ratio(order("drbfast place (uvloop)", "orders-idle").get("order_p50_us"), c_ord), lambda x: x <= 1.3, "{:.2f}x")
    add("orders: await client.buy within 2x of C (uvloop)",
        ratio(order("drbfast await (uvloop)", "orders-idle").get("order_p50_us"), c_ord), lambda x: x <= 2.0, "{:.2f}x")
    add("orders: fire-and-forget 4x faster than websockets+json (asyncio)",
        ratio(order("websockets+json (asyncio)", "orders-idle").get("order_p50_us"),
              order("drbfast place (asyncio)", "orders-idle").get("order_p50_us")), lambda x: x >= 4, "{:.1f}x")
    fl = order("drbfast place (asyncio)", "orders-flood").get("order_p99_us")
    add("orders: ack p99 under the flood with a slow consumer under 2 ms (asyncio)", fl / 1000 if fl else None,
        lambda x: x < 2.0, "{:.2f} ms")
    return out


def targets_table(results: list[Row]) -> str:
    rows = ["| target | measured | met? |", "|---|---|---|"]
    for name, measured, ok in targets(results):
        rows.append(f"| {name} | {measured} | {'-' if ok is None else 'yes' if ok else 'no'} |")
    return "\n".join(rows)


# ---------------------------------------------------------------- plots

def _cdf(ax: Any, results: list[Row], pick: Callable[[Row], bool], scale: float) -> int:
    drawn = 0
    for r in results:
        f = r["figures"].get("rtt_file")
        if not pick(r) or not f or not Path(f).exists():
            continue
        values = sorted(int(x) / scale for x in Path(f).read_text().split())
        if not values:
            continue
        ys = [i / len(values) for i in range(len(values))]
        style = "--" if "uvloop" in r["client"] else "-"
        width = 2.5 if r["client"].startswith(("drbfast", "C floor", "FastListener")) else 1.2
        ax.plot(values, ys, style, label=r["client"], linewidth=width)
        drawn += 1
    return drawn


def plot(results: list[Row], directory: Path) -> list[Path]:
    """latency.png (idle round trip CDF) and flood.png (round trip under the flood)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    for name, mode, scale, xlabel, title in (
            ("latency.png", "idle", 1000, "test_request round trip, us (server-side, same core, TCP)", "Idle reply latency (CDF)"),
            ("flood.png", "flood", 1_000_000, "test_request round trip, ms (server-side, same core, TCP)",
             "Reply latency under a flood of 1 KB notifications (CDF)")):
        fig, ax = plt.subplots(figsize=(9, 5))
        n = _cdf(ax, results, lambda r, m=mode: r["mode"] == m and r["transport"] == "tcp" and r["placement"] == "same-core", scale)
        if not n:
            plt.close(fig)
            continue
        ax.set_xscale("log")
        ax.set_xlabel(xlabel)
        ax.set_ylabel("fraction of round trips")
        ax.set_title(title)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
        fig.tight_layout()
        path = directory / name
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)
    return written


# ---------------------------------------------------------------- the text

def render(run: dict[str, Any]) -> str:
    """The generated part of RESULTS.md."""
    m, results = run["machine"], run["results"]
    v = m["versions"]
    load = ", ".join(f"{x:.1f}" for x in m.get("loadavg", []))
    load_end = ", ".join(f"{x:.1f}" for x in run.get("loadavg_end", []))
    failed = [r for r in results if r.get("error")]
    met = [t for t in targets(results) if t[2] is True]
    missed = [t for t in targets(results) if t[2] is False]
    parts = [
        BEGIN,
        "## End-to-end (drbfast bench)",
        "",
        f"Recorded {run['started']} to {run['finished']} with:",
        "",
        f"    {run['command']}",
        "",
        f"Machine: {m['vcpus']} vCPUs ({m['cpu']}), Linux {m['kernel']}, {m['mem_gib']} GiB; load average at the "
        f"start {load or '-'}, at the end {load_end or '-'} (the machine is shared: read ratios within this run). "
        "Python {python}, picows {picows}, pysimdjson {pysimdjson}, websockets {websockets}, aiohttp {aiohttp}, "
        "orjson {orjson}, uvloop {uvloop}, Cython {Cython}; {cc}; {openssl}.".format(**v),
        "",
        f"{len(results)} runs, {len(failed)} failed; {len(met)} targets met, {len(missed)} missed "
        f"(table at the end of this part).",
        "",
        "Each client is its own process against a fresh C server process (bench/c/server.c) on 127.0.0.1; the "
        "server answers the client's set-up (hello, set_heartbeat, subscribe, auth) and times every "
        "test_request round trip itself (CLOCK_MONOTONIC) once the client says it is ready. \"same core\": "
        "server and client both `taskset -c 0`; \"x-core\": server on 0, client on 1. "
        f"Idle: {run['settings']['idle']:,} sequential round trips after {run['settings']['warmup']:,} of warm-up. "
        f"Throughput: {run['settings']['throughput']:,} ~1 KB book notifications as fast as the socket takes "
        "them, rate until the client confirms it handled all (\"few\": read change_id, timestamp and the best "
        "bid, as a quoting strategy does; \"full\": decode to dicts). "
        f"Flood: {run['settings']['flood']:,} notifications with a test_request after every "
        f"{run['settings']['every'] - 1}. TLS: TLS 1.3, TLS_AES_128_GCM_SHA256 for every client. "
        + (f"Idle and few-fields throughput were run {run['settings']['repeat']} times; the figure is the median run "
         "and [brackets] give the lowest and highest." if run["settings"].get("repeat", 1) > 1 else
         "Each mode ran once (no spread: pass --repeat 3)."),
        "",
        "Rows: `drbfast.connect` is what users import (`connect()` + `subscribe(callback=)`, default options; "
        "`lazy` adds `lazy=True`); `FastListener raw` is the engine with a hand-written simdjson hook and one "
        "FIFO (`lanes=False`), its own ceiling; `drbfast.websockets` is the drop-in with the same user code as "
        "the websockets rows. Latencies in us; \"(x C)\" is the ratio to the C floor; throughput ratios are to "
        "websockets+orjson on the same loop. Throughput is what the consumer handled per second; "
        "<n% handled> marks a client that shed the rest (the default lanes reset a book the consumer cannot "
        "keep up with; the `lanes=False` row handles every message).",
        "",
        main_table(results),
        "",
        "![idle latency CDF](latency.png) ![latency under a flood](flood.png)",
        "",
        "### Slow consumer (asyncio, one core, TCP)",
        "",
        "slow-500us: a paced feed of 10,000 messages/s of 170-300 B (12 trades, 2 tickers, 2 book changes, 1 "
        "index, 2 user.orders, 1 reply in 20) with a test_request every 100 ms, to a consumer that parses each "
        "message then spends 500 us busy (5x slower than the feed); each test_request is timed from the moment "
        "the server queues it. flood-50us: the flood with a test_request every 200 and a 50 us consumer. "
        "For drbfast rows conflated / dropped / book resets are the listener's lane counters.",
        "",
        slow_table(results),
    ]
    orders = orders_table(results) if any(r["mode"].startswith("orders-") for r in results) else ""
    if orders:
        parts += ["", "### Order round trip (send -> ack, as user code sees it)", "",
                  "The C server (serve mode) acks each private/buy at once with a production-shaped order "
                  "(bench/e2e/orders.py). orders-idle: server and client on one core, one order at a time "
                  "(warm-up first). orders-flood: beside the slow-consumer feed (10,000 messages/s, 2 of 20 "
                  "private user.orders notifications, a test_request every 100 ms) consumed at 500 us a "
                  "notification, an order every 10 ms; orders-flood-public: the same feed without its "
                  "private notifications (drbfast only). Each client times its own orders, from just before "
                  "the send call to the ack seen by user code (`place`: `on_ack`; `await`: `await "
                  "client.buy(...)` returning). Under the flood a peer's orders wait behind its backlog: "
                  "\"3 of 4\" means 4 sent, 3 acked before the feed ended.",
                  "", orders]
    parts += ["", "### Against the targets", "", targets_table(results)]
    if failed:
        parts += ["", "Failed runs:", ""] + [f"* {r['client']} {r['transport']} {r['placement']} {r['mode']}: {r['error']}"
                                              for r in failed]
    parts += ["", END]
    return "\n".join(parts)


def write(run: dict[str, Any], results_md: Path) -> None:
    """Replace the generated part of ``results_md`` (appended if it has none)."""
    text = results_md.read_text() if results_md.exists() else "# Benchmark results\n"
    block = render(run)
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        tail = rest.split(END, 1)[1]
        text = head + block + tail
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    results_md.write_text(text)


def new_run(command: str, settings: dict[str, Any]) -> dict[str, Any]:
    return {"command": command, "started": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "machine": machine(), "settings": settings, "results": []}


def finish_run(run: dict[str, Any]) -> None:
    run["finished"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    run["loadavg_end"] = list(os.getloadavg()) if hasattr(os, "getloadavg") else []


def median_run(figures: list[dict[str, Any]], key: str) -> dict[str, Any]:
    """The run whose ``key`` is the median, with ``spread[key]`` listing every run's."""
    usable = [f for f in figures if key in f]
    if not usable:
        return figures[0] if figures else {}
    ordered = sorted(usable, key=lambda f: f[key])
    chosen = dict(ordered[(len(ordered) - 1) // 2])
    chosen["spread"] = {k: [f[k] for f in usable if k in f] for k in (key, "p99_us", "rate") if any(k in f for f in usable)}
    chosen["median_of"] = len(usable)
    return chosen


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.e2e.report", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("json", help="a run written by the runner's --json")
    p.add_argument("--results", default=str(Path(__file__).resolve().parents[1] / "RESULTS.md"))
    p.add_argument("--plot-dir", help="write latency.png and flood.png there")
    args = p.parse_args(argv)
    run = json.loads(Path(args.json).read_text())
    write(run, Path(args.results))
    if args.plot_dir:
        for path in plot(run["results"], Path(args.plot_dir)):
            print(f"wrote {path}", file=sys.stderr)
    print(f"wrote {args.results}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())


__all__ = ["BEGIN", "END", "finish_run", "machine", "main_table", "median_run", "new_run", "orders_table", "plot", "render",
           "slow_table", "targets", "targets_table", "write"]
