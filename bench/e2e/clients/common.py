"""What every benchmark client does, whatever its stack:

* answer each ``test_request`` with a ``public/test`` request, at once;
* hand each notification to a callback that either reads a few fields (``few``: the
  way a quoting strategy reads a book update) or decodes it fully (``full``);
* answer the server's ``bench_end`` with ``done`` and exit, printing one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import ssl
import sys
from typing import Any, Callable

PUBLIC_TEST = '{"jsonrpc":"2.0","id":%d,"method":"public/test","params":{}}'


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--tls", metavar="CAFILE", help="connect with wss:// trusting CAFILE")
    p.add_argument("--loop", choices=("asyncio", "uvloop"), default="asyncio")
    p.add_argument("--decode", choices=("few", "full"), default="few")
    return p.parse_args()


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
    count = asyncio.run(main(args))
    print(json.dumps({"client": sys.argv[0], "notifications": count}), flush=True)
