"""What every benchmark client does, whatever its stack:

* send ``ready`` once connected and set up (the server answers set-up requests until
  then, and starts measuring only after it);
* answer each ``test_request`` with a ``public/test`` request, at once;
* hand each notification to a callback that either reads a few fields (``few``: the
  way a quoting strategy reads a book update), decodes it fully (``full``) or only parses
  it (``parse``: the slow-consumer mode's mixed channels), then spends ``--cost-us``
  microseconds busy (a strategy doing real work);
* answer the server's ``bench_end`` with ``done`` and exit (or stop when the server
  closes, or at ``--deadline-s``), printing one JSON line: notifications handled, peak
  RSS, and whatever the client adds (drbfast: its listener's lane counters).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import ssl
import sys
import time
from typing import Any, Callable

# Sent once connected (and set up): the server starts its mode only after it.
READY = "ready"
PUBLIC_TEST = '{"jsonrpc":"2.0","id":%d,"method":"public/test","params":{}}'


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--tls", metavar="CAFILE", help="connect with wss:// trusting CAFILE")
    p.add_argument("--loop", choices=("asyncio", "uvloop"), default="asyncio")
    p.add_argument("--decode", choices=("few", "full", "parse"), default="few")
    p.add_argument("--cost-us", type=float, default=0.0, help="busy time per notification")
    p.add_argument("--deadline-s", type=float, default=0.0, help="stop consuming after this long (0: never)")
    p.add_argument("--lanes", choices=("on", "off"), default="on", help="drbfast: FastListener(lanes=...)")
    p.add_argument("--lazy", action="store_true", help="drbfast.connect(lazy=True)")
    return p.parse_args()


def busy(seconds: float) -> None:
    """Spend ``seconds`` of CPU (perf_counter busy loop): the consumer's own work."""
    if seconds <= 0:
        return
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


class Deadline:
    """``expired()`` once ``seconds`` have passed since construction (never if 0)."""

    def __init__(self, seconds: float) -> None:
        self.at = time.monotonic() + seconds if seconds > 0 else float("inf")

    def expired(self) -> bool:
        return time.monotonic() >= self.at


def url(args: argparse.Namespace) -> str:
    return f"{'wss' if args.tls else 'ws'}://localhost:{args.port}/ws/api/v2"


def ssl_context(args: argparse.Namespace) -> ssl.SSLContext | None:
    if not args.tls:
        return None
    ctx = ssl.create_default_context(cafile=args.tls)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3  # the server pins TLS_AES_128_GCM_SHA256
    return ctx


def few_fields(msg: dict[str, Any]) -> Any:
    data = msg["params"]["data"]
    return data["change_id"], data["timestamp"], data["bids"][0][1]


def run(main: Callable[[argparse.Namespace], Any]) -> None:
    args = parse_args()
    if args.loop == "uvloop":
        import uvloop

        uvloop.install()
    result = asyncio.run(main(args))
    count, extra = result if isinstance(result, tuple) else (result, {})
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"client": sys.argv[0], "notifications": count, "peak_rss_mb": round(peak_kb / 1024, 1), **extra}), flush=True)
