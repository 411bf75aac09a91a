"""Where an idle test_request round trip's work goes, client side, per configuration.

    python -m bench.tuning.profile_idle [--short 300 --long 2300] [--only NAME...] [--no-strace] [--perf N]

Each client answers the bench C server's idle test_requests (bench/c/server.c, idle mode)
twice: ``--short`` and ``--long`` round trips, under valgrind's callgrind. The difference
divided by the extra round trips is the work of one round trip, with start-up, handshake
and shut-down cancelled out. Instruction counts do not depend on the machine's load, so
the figures repeat on a busy 2-core machine; they cover user space only, so the same
pair of runs is repeated under ``strace -c`` to count the system calls per round trip.

Output: a markdown table per configuration (instructions per round trip by stage and by
shared object), and one JSON line per configuration for bench/PROFILE.md.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections import defaultdict
from pathlib import Path
from typing import Any

from bench.e2e.build import certificate, compile_c

ROOT = Path(__file__).resolve().parents[2]
PY = sys.executable
CLIENT = [PY, "-m", "bench.tuning.idle_client"]

# name -> (argv without --port, tls)
CONFIGS: dict[str, tuple[list[str], bool]] = {
    "C floor": ([], False),
    "asyncio": ([*CLIENT, "--loop", "asyncio"], False),
    "asyncio, loop transport": ([*CLIENT, "--loop", "asyncio", "--transport", "loop"], False),
    "uvloop": ([*CLIENT, "--loop", "uvloop"], False),
    "uvloop, loop transport": ([*CLIENT, "--loop", "uvloop", "--transport", "loop"], False),
    "C floor TLS": ([], True),
    "asyncio TLS": ([*CLIENT, "--loop", "asyncio"], True),
    "asyncio TLS, loop transport": ([*CLIENT, "--loop", "asyncio", "--transport", "loop"], True),
    "uvloop TLS": ([*CLIENT, "--loop", "uvloop"], True),
    "uvloop TLS, loop transport": ([*CLIENT, "--loop", "uvloop", "--transport", "loop"], True),
}

# Inclusive cost of these functions splits the drbfast path into stages.
STAGES = {
    "picows get_buffer": r"__pyx_pw_6picows_6picows_10WSProtocol_\d+get_buffer$",
    "picows buffer_updated": r"__pyx_pw_6picows_6picows_10WSProtocol_\d+buffer_updated$",
    "FastListener.on_ws_frame": r"__pyx_f_7drbfast_9_listener_12FastListener_on_ws_frame$",
    "classify_msg": r"classify_msg$",
    "send_reuse_external_buffer": r"__pyx_f_6picows_6picows_11WSTransport_send_reuse_external_buffer$",
    "picows _fast_write": r"__pyx_f_6picows_6picows_11WSTransport__fast_write$",
    "mask": r"mask_payload|_mask_",
}

OBJECTS = [
    ("drbfast _listener", "_listener."), ("drbfast _classify", "_classify."), ("picows", "picows/"),
    ("aiofastnet", "aiofastnet/"), ("uvloop", "uvloop/"), ("CPython", "libpython"), ("CPython", "lib-dynload/"),
    ("OpenSSL", "libssl"), ("OpenSSL", "libcrypto"), ("libc", "libc.so"), ("ld.so", "ld-linux"),
]

LINE = re.compile(r"^\s*([\d,]+)\s+(?:\([^)]*\)\s+)?(\S.*?):([^:\s]+?)(?:'\d+)?(?:\s+\[(.+)\])?\s*$")
TOTAL = re.compile(r"^\s*([\d,]+)\s.*PROGRAM TOTALS")


def annotate(path: Path, inclusive: bool) -> tuple[int, list[tuple[int, str, str]]]:
    out = subprocess.run(["callgrind_annotate", f"--inclusive={'yes' if inclusive else 'no'}", "--threshold=100", str(path)],
                         capture_output=True, text=True, check=True).stdout
    total, rows = 0, []
    for line in out.splitlines():
        m = TOTAL.match(line)
        if m:
            total = int(m.group(1).replace(",", ""))
            continue
        m = LINE.match(line)
        if m:
            rows.append((int(m.group(1).replace(",", "")), m.group(3), m.group(4) or ""))
    return total, rows


def start_server(server: Path, count: int, tls: bool) -> tuple[subprocess.Popen[str], int]:
    cmd = [str(server), "--port", "0", "--mode", "idle", "--count", str(count), "--warmup", "0"]
    if tls:
        cert, key = certificate()
        cmd += ["--cert", str(cert), "--key", str(key)]
    srv = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert srv.stdout is not None
    port = json.loads(srv.stdout.readline())["listening"]
    return srv, port


def client_cmd(argv: list[str], client_exe: Path, port: int, tls: bool) -> list[str]:
    cmd = list(argv) if argv else [str(client_exe)]
    cmd += ["--port", str(port)]
    if tls:
        cmd += ["--tls", str(certificate()[0])]
    return cmd


def one_run(wrapper: list[str], argv: list[str], tls: bool, count: int, server: Path, client_exe: Path) -> None:
    srv, port = start_server(server, count, tls)
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    try:
        subprocess.run([*wrapper, *client_cmd(argv, client_exe, port, tls)], cwd=ROOT, env=env, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=600)
        srv.wait(timeout=60)
    finally:
        if srv.poll() is None:
            srv.kill()
            srv.wait()


def per_rtt_callgrind(name: str, short: int, long: int, server: Path, client_exe: Path, tmp: Path) -> dict[str, Any]:
    argv, tls = CONFIGS[name]
    files = []
    for n in (short, long):
        f = tmp / f"cg-{abs(hash(name))}-{n}.out"
        one_run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={f}"], argv, tls, n, server, client_exe)
        files.append(f)
    extra = long - short
    (t0, inc0), (t1, inc1) = annotate(files[0], True), annotate(files[1], True)
    (_, exc0), (_, exc1) = annotate(files[0], False), annotate(files[1], False)

    def stage(rows: list[tuple[int, str, str]], pattern: str) -> int:
        rx = re.compile(pattern)
        return max((ir for ir, fn, _ in rows if rx.search(fn)), default=0)

    stages = {k: (stage(inc1, p) - stage(inc0, p)) / extra for k, p in STAGES.items()}

    def by_object(rows: list[tuple[int, str, str]]) -> dict[str, int]:
        acc: dict[str, int] = defaultdict(int)
        for ir, _, obj in rows:
            if not obj:
                continue
            label = next((lab for lab, key in OBJECTS if key in obj), "other")
            acc[label] += ir
        return acc

    o0, o1 = by_object(exc0), by_object(exc1)
    objects = {k: (o1.get(k, 0) - o0.get(k, 0)) / extra for k in sorted(set(o0) | set(o1))}

    def by_function(rows: list[tuple[int, str, str]]) -> dict[str, int]:
        acc: dict[str, int] = defaultdict(int)
        for ir, fn, obj in rows:
            if obj:
                acc[fn] += ir
        return acc

    f0, f1 = by_function(exc0), by_function(exc1)
    top = sorted(((fn, (f1.get(fn, 0) - f0.get(fn, 0)) / extra) for fn in set(f0) | set(f1)), key=lambda kv: -kv[1])[:12]
    return {"config": name, "instructions_per_rtt": (t1 - t0) / extra, "stages": stages, "objects": objects,
            "top_functions": dict(top)}


def per_rtt_syscalls(name: str, short: int, long: int, server: Path, client_exe: Path, tmp: Path) -> dict[str, float]:
    argv, tls = CONFIGS[name]
    counts = []
    for n in (short, long):
        f = tmp / f"st-{abs(hash(name))}-{n}.txt"
        one_run(["strace", "-f", "-c", "-o", str(f)], argv, tls, n, server, client_exe)
        c: dict[str, int] = {}
        for line in f.read_text().splitlines():
            parts = line.split()
            if len(parts) >= 5 and parts[0][0].isdigit() and parts[-1] != "total":
                c[parts[-1]] = int(parts[3])
        counts.append(c)
    extra = long - short
    return {k: (counts[1].get(k, 0) - counts[0].get(k, 0)) / extra for k in sorted(set(counts[0]) | set(counts[1]))
            if abs(counts[1].get(k, 0) - counts[0].get(k, 0)) / extra >= 0.05}


def time_shares(name: str, count: int, server: Path, client_exe: Path, tmp: Path) -> dict[str, Any]:
    """Where the client's CPU time goes, kernel included: ``perf record`` (cpu-clock
    sampling) over ``count`` round trips, started 2 s in to skip start-up."""
    argv, tls = CONFIGS[name]
    data = tmp / f"perf-{abs(hash(name))}.data"
    one_run(["perf", "record", "-q", "-F", "10000", "-e", "cpu-clock", "-D", "2000", "-o", str(data)], argv, tls, count,
            server, client_exe)

    def shares(sort: str) -> dict[str, float]:
        out = subprocess.run(["perf", "report", "-i", str(data), "--stdio", "--sort", sort], capture_output=True, text=True).stdout
        acc: dict[str, float] = {}
        for line in out.splitlines():
            parts = line.split(None, 1)
            if len(parts) == 2 and parts[0].endswith("%") and not line.startswith("#"):
                acc[parts[1].strip()] = float(parts[0].rstrip("%"))
        return acc

    by_dso = shares("dso")
    return {"by_dso": {k: v for k, v in by_dso.items() if v >= 0.5},
            "kernel_share": sum(v for k, v in by_dso.items() if "kernel" in k),
            "top_symbols": dict(list(shares("dso,sym").items())[:15])}


def report(r: dict[str, Any]) -> str:
    s = r["stages"]
    total = r["instructions_per_rtt"]
    read = s["picows get_buffer"] + s["picows buffer_updated"]
    lines = [f"### {r['config']}: {total:,.0f} instructions per round trip (user space)"]
    if read:
        listener = s["FastListener.on_ws_frame"]
        send = s["send_reuse_external_buffer"]
        rows = [
            ("event loop, transport and Python around the read (total - picows' read entry)", total - read),
            ("picows read path (get_buffer + buffer_updated - on_ws_frame)", read - listener),
            ("FastListener.on_ws_frame, without classify and send", listener - s["classify_msg"] - send),
            ("classify_msg", s["classify_msg"]),
            ("send: picows send_reuse_external_buffer (mask, header, _fast_write)", send),
        ]
        lines += ["", "| stage | instructions | share |", "|---|---:|---:|"]
        lines += [f"| {k} | {v:,.0f} | {v / total:.0%} |" for k, v in rows]
    lines += ["", "| shared object (exclusive) | instructions |", "|---|---:|"]
    lines += [f"| {k} | {v:,.0f} |" for k, v in sorted(r["objects"].items(), key=lambda kv: -kv[1]) if abs(v) >= 1]
    lines += ["", "| top functions (exclusive) | instructions |", "|---|---:|"]
    lines += [f"| `{k}` | {v:,.0f} |" for k, v in r["top_functions"].items()]
    if r.get("perf"):
        t = r["perf"]
        lines += ["", f"CPU time (perf, cpu-clock samples; kernel {t['kernel_share']:.0f}%):", "",
                  "| shared object | share of samples |", "|---|---:|"]
        lines += [f"| {k} | {v:.1f}% |" for k, v in t["by_dso"].items()]
        lines += ["", "| top symbols | share |", "|---|---:|"] + [f"| `{k}` | {v:.1f}% |" for k, v in t["top_symbols"].items()]
    if r.get("syscalls"):
        lines += ["", "system calls per round trip: " + ", ".join(f"{k} {v:.2f}" for k, v in r["syscalls"].items())]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--short", type=int, default=300)
    p.add_argument("--long", type=int, default=2300)
    p.add_argument("--only", nargs="*", choices=list(CONFIGS), help="configurations to run (default: all)")
    p.add_argument("--no-strace", action="store_true")
    p.add_argument("--perf", type=int, default=0, metavar="N",
                   help="also sample CPU time (kernel included) with perf over N round trips")
    p.add_argument("--json", metavar="FILE", help="append one JSON line per configuration")
    args = p.parse_args(argv)
    if shutil.which("valgrind") is None or shutil.which("callgrind_annotate") is None:
        raise SystemExit("profile_idle: valgrind is needed (apt-get install valgrind)")
    server, client_exe = compile_c()
    with tempfile.TemporaryDirectory(prefix="drbfast-profile-") as d:
        tmp = Path(d)
        for name in args.only or list(CONFIGS):
            r = per_rtt_callgrind(name, args.short, args.long, server, client_exe, tmp)
            if args.perf and shutil.which("perf"):
                r["perf"] = time_shares(name, args.perf, server, client_exe, tmp)
            if not args.no_strace and shutil.which("strace"):
                r["syscalls"] = per_rtt_syscalls(name, args.short, args.long, server, client_exe, tmp)
            print(report(r) + "\n", flush=True)
            if args.json:
                with open(args.json, "a") as f:
                    f.write(json.dumps(r) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
