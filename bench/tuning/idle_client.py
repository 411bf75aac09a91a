"""The idle client of the tuning runs: drbfast's FastListener on picows, answering the
bench server's test_requests, with one start-up setting changed at a time.

    python -m bench.tuning.idle_client --port P [--loop uvloop] [--transport loop]
        [--gc default|freeze|off] [--gc-threshold N] [--heap N] [--churn N] [--full-gc-every MS]
        [--burn thread|process] [--no-nodelay] [--tls CAFILE]

--heap N keeps N long-lived container objects (an application's state: instruments,
books, orders) and --churn N allocates N short-lived dicts per millisecond in a task
(strategy work), so the cyclic GC has something to collect and a heap to walk.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import gc
import json
import multiprocessing
import socket
import ssl
import sys
import threading
import time
from typing import Any

import picows

from drbfast import FastListener


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--tls", metavar="CAFILE")
    p.add_argument("--loop", choices=("asyncio", "uvloop"), default="asyncio")
    p.add_argument("--transport", choices=("default", "aiofastnet", "loop"), default="default",
                   help="picows' transport: aiofastnet's (picows' default when installed) or the loop's own")
    p.add_argument("--gc", choices=("default", "freeze", "off"), default="default")
    p.add_argument("--gc-threshold", type=int, default=0, help="generation-0 threshold (0: leave as is)")
    p.add_argument("--heap", type=int, default=0)
    p.add_argument("--churn", type=int, default=0)
    p.add_argument("--full-gc-every", type=int, default=0, metavar="MS", help="run gc.collect() every MS milliseconds")
    p.add_argument("--burn", choices=("none", "thread", "process"), default="none",
                   help="pure-Python CPU work beside the loop: in a thread of this process, or in another process")
    p.add_argument("--no-nodelay", action="store_true", help="turn TCP_NODELAY off (picows turns it on)")
    p.add_argument("--count-allocs", action="store_true",
                   help="count calls into CPython's allocators from the handshake to the close")
    p.add_argument("--decode", default="few", help=argparse.SUPPRESS)  # the e2e runner passes it
    return p.parse_args(argv)


def alloc_counter() -> Any:
    """tests/test_alloc.py's allocator-call counter, built once into bench/build."""
    import importlib.util
    import subprocess
    import sysconfig

    from bench.e2e.build import BUILD
    from tests.test_alloc import COUNTER_C

    name = "_drbfast_alloc_counter"
    target = BUILD / (name + sysconfig.get_config_var("EXT_SUFFIX"))
    if not target.exists():
        BUILD.mkdir(exist_ok=True)
        src = BUILD / "alloc_counter.c"
        src.write_text(COUNTER_C)
        cc = (sysconfig.get_config_var("CC") or "cc").split()
        subprocess.run([*cc, "-shared", "-fPIC", "-O2", "-I", sysconfig.get_paths()["include"], str(src), "-o", str(target)],
                       check=True, timeout=120)
    spec = importlib.util.spec_from_file_location(name, target)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


async def churn(per_ms: int) -> None:
    """Containers made every millisecond, as a strategy's per-tick work makes them, kept
    for 50 ms (recent ticks) and left as reference cycles (a dict that refers to itself),
    so only the cyclic GC frees them: young collections come round as they do in an
    application, and what survives them is promoted."""
    window: collections.deque[list[dict[str, Any]]] = collections.deque(maxlen=50)
    while True:
        tick = []
        for i in range(per_ms):
            d: dict[str, Any] = {"px": i}
            d["self"] = d
            tick.append(d)
        window.append(tick)
        await asyncio.sleep(0.001)


async def full_collections(every_ms: int) -> None:
    """A full collection every ``every_ms``: what an application's growth triggers
    sooner or later (CPython runs one when the objects promoted since the last exceed
    a quarter of the long-lived ones)."""
    while True:
        await asyncio.sleep(every_ms / 1000)
        gc.collect()


def burn(stop: Any) -> int:
    """Pure-Python CPU work (holds the GIL) until ``stop`` is set."""
    n = 0
    while not stop.is_set():
        for i in range(10_000):
            n += i * i % 7
    return n


async def main(args: argparse.Namespace) -> dict[str, Any]:
    heap = [{"i": i, "levels": [i]} for i in range(args.heap)]
    done = asyncio.get_running_loop().create_future()
    ctx = None
    if args.tls:
        ctx = ssl.create_default_context(cafile=args.tls)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_3

    counter = alloc_counter() if args.count_allocs else None
    allocations = []

    def connected(_l: FastListener) -> None:
        if counter is not None:
            counter.start()

    def disconnected(_l: FastListener) -> None:
        if counter is not None:
            allocations.append(counter.stop())
        if not done.done():
            done.set_result(None)

    holder: list[FastListener] = []

    def on_message(payload: bytes, binary: bool, lane: int, channel: str, rx_ns: int) -> None:
        # flood mode ends with bench_end, answered with "done" (bench/c/server.c)
        if payload.startswith(b'{"jsonrpc":"2.0","method":"bench_end"'):
            holder[0].send(b"done")

    def factory() -> FastListener:
        holder.append(FastListener(on_message, connected, disconnected))
        return holder[0]

    kw: dict[str, Any] = {}
    if args.transport != "default":
        kw["use_aiofastnet"] = args.transport == "aiofastnet"
    transport, listener = await picows.ws_connect(factory, f"{'wss' if ctx else 'ws'}://localhost:{args.port}/", ssl_context=ctx, **kw)
    if args.no_nodelay:
        sock = transport.underlying_transport.get_extra_info("socket")
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 0)
    holder[0].send(b"ready")  # the bench server starts its mode after it
    # Start-up is over: this is where an application would freeze what it built.
    if args.gc_threshold:
        gc.set_threshold(args.gc_threshold, *gc.get_threshold()[1:])
    if args.gc == "freeze":
        gc.collect()
        gc.freeze()
    elif args.gc == "off":
        gc.disable()
    pauses: dict[int, list[int]] = {0: [], 1: [], 2: []}
    started = [0]

    def timed(phase: str, info: dict[str, int]) -> None:
        # every collection's duration, by generation: the pause a test_request waits out
        if phase == "start":
            started[0] = time.perf_counter_ns()
        else:
            pauses[info["generation"]].append(time.perf_counter_ns() - started[0])

    gc.callbacks.append(timed)
    task = asyncio.get_running_loop().create_task(churn(args.churn)) if args.churn else None
    full = asyncio.get_running_loop().create_task(full_collections(args.full_gc_every)) if args.full_gc_every else None
    burner: threading.Thread | multiprocessing.Process | None = None
    if args.burn == "thread":
        stop: Any = threading.Event()
        burner = threading.Thread(target=burn, args=(stop,), daemon=True)
        burner.start()
    elif args.burn == "process":
        stop = multiprocessing.Event()
        burner = multiprocessing.Process(target=burn, args=(stop,), daemon=True)
        burner.start()
    await done
    for t in (task, full):
        if t is not None:
            t.cancel()
    if burner is not None:
        stop.set()
        burner.join(5)
    return {"client": "idle_client", "transport": type(transport.underlying_transport).__module__,
            "python": sys.version.split()[0], "heap": len(heap),
            "gc_pauses": {g: {"n": len(v), "max_ms": max(v, default=0) / 1e6, "total_ms": sum(v) / 1e6} for g, v in pauses.items()},
            "answered": listener.stats.replies_sent if isinstance(listener, FastListener) else None, "allocations": allocations[0] if allocations else None}


def run(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.loop == "uvloop":
        import uvloop

        uvloop.install()
    print(json.dumps(asyncio.run(main(args))), flush=True)


if __name__ == "__main__":
    run()
