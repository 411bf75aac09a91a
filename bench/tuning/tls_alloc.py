"""Python allocations per answered test_request, TCP against TLS, per transport and loop.

    python -m bench.tuning.tls_alloc [--short 500 --long 2500]

The client (bench.tuning.idle_client --count-allocs) counts every call into CPython's
allocators (PyMem_SetAllocator hook, as tests/test_alloc.py) from the end of the
WebSocket handshake to the close, while the bench C server runs ``--short`` and then
``--long`` idle round trips; the difference over the extra round trips is what one
round trip costs: the loop's wake-up, the read, the listener and the answer.

The answer alone is counted as tests/test_alloc.py does: test_request frames fed through
``FastListener.on_ws_frame`` on a connected transport (a picows server in the same
process, which does not run while the frames are fed), for 1,000 and 100 answers.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

from bench.e2e.build import certificate, compile_c

ROOT = Path(__file__).resolve().parents[2]

CONFIGS = [
    (loop, transport, tls)
    for tls in (False, True)
    for loop in ("asyncio", "uvloop")
    for transport in ("aiofastnet", "loop")
]


def allocations(server: Path, loop: str, transport: str, tls: bool, count: int) -> int:
    cmd = [str(server), "--port", "0", "--mode", "idle", "--count", str(count), "--warmup", "0"]
    cert, key = certificate()
    if tls:
        cmd += ["--cert", str(cert), "--key", str(key)]
    srv = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert srv.stdout is not None
        port = json.loads(srv.stdout.readline())["listening"]
        cli = [sys.executable, "-m", "bench.tuning.idle_client", "--port", str(port), "--loop", loop,
               "--transport", transport, "--count-allocs"] + (["--tls", str(cert)] if tls else [])
        env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
        out = subprocess.run(cli, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=True).stdout
        srv.wait(timeout=30)
        return int(json.loads(out.strip().splitlines()[-1])["allocations"])
    finally:
        if srv.poll() is None:
            srv.kill()
            srv.wait()


async def send_path_allocations(transport_kind: str, tls: bool, n: int) -> int:
    import itertools
    import ssl

    import picows
    from picows.picows import _make_test_ws_frame

    from bench.tuning.idle_client import alloc_counter
    from drbfast import FastListener
    from tests.test_alloc import TR

    counter = alloc_counter()
    cert, key = certificate()
    sctx = cctx = None
    if tls:
        sctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        sctx.load_cert_chain(str(cert), str(key))
        cctx = ssl.create_default_context(cafile=str(cert))
    server = await picows.ws_create_server(lambda _r: picows.WSListener(), "127.0.0.1", 0, ssl=sctx)
    port = server.sockets[0].getsockname()[1]
    transport, listener = await picows.ws_connect(lambda: FastListener(None), f"{'wss' if tls else 'ws'}://localhost:{port}/",
                                                  ssl_context=cctx, use_aiofastnet=transport_kind == "aiofastnet")
    frame = _make_test_ws_frame(picows.WSMsgType.TEXT, TR, True, False)
    on_frame = listener.on_ws_frame

    def run(k: int) -> int:
        counter.start()
        for _ in itertools.repeat(None, k):
            on_frame(transport, frame)
        return int(counter.stop())

    try:
        run(10)
        small = run(n // 10)
        await asyncio.sleep(0.05)  # let the server drain
        large = run(n)
        return large - small
    finally:
        transport.disconnect()
        server.close()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--short", type=int, default=500)
    p.add_argument("--long", type=int, default=2500)
    args = p.parse_args(argv)
    server, _ = compile_c()
    print("| loop | transport | wire | allocator calls per round trip |\n|---|---|---|---:|")
    for loop, transport, tls in CONFIGS:
        a = allocations(server, loop, transport, tls, args.short)
        b = allocations(server, loop, transport, tls, args.long)
        print(f"| {loop} | {transport} | {'TLS' if tls else 'TCP'} | {(b - a) / (args.long - args.short):.2f} |", flush=True)
    n = 1000
    print(f"\nThe answer alone (send path, asyncio): allocator calls per answer over {n - n // 10} answers\n")
    print("| transport | wire | allocator calls per answer |\n|---|---|---:|")
    for transport in ("aiofastnet", "loop"):
        for tls in (False, True):
            calls = asyncio.run(send_path_allocations(transport, tls, n))
            print(f"| {transport} | {'TLS' if tls else 'TCP'} | {calls / (n - n // 10):.2f} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
