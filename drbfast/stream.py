"""``drbfast stream``: Deribit notifications as JSON lines on stdout.

stdout carries only ``{"channel": ..., "data": ...}`` lines; everything else (the
summary, warnings, the reason for a failure) goes to stderr. The secret is never
printed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import ssl
import sys
import time
from typing import Any, TextIO

from .client import connect
from .errors import AuthenticationError, DeribitError, DrbfastError, SubscriptionRefused
from .book import parse_book_channel
from .urls import COINBASE, COINBASE_STREAMS, MAINNET, TESTNET

__all__ = ["run_stream"]


def _fail(message: str) -> int:
    print(f"drbfast stream: {message}", file=sys.stderr)
    return 1


async def _stream(args: argparse.Namespace, url: str, client_id: str | None, client_secret: str | None, out: TextIO) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    count = 0
    t0 = time.monotonic()

    def emit(channel: str, data: Any) -> None:
        nonlocal count
        if stop.is_set():
            return
        try:
            out.write(json.dumps({"channel": channel, "data": data}, separators=(",", ":")) + "\n")
        except BrokenPipeError:
            # The reader went away (`drbfast stream ... | head -1`): stop quietly.
            _silence_stdout(out)
            stop.set()
            return
        count += 1
        if args.count is not None and count >= args.count:
            stop.set()

    ssl_ctx = None
    if args.insecure and url.startswith("wss://"):
        ssl_ctx = ssl.create_default_context()
        ssl_ctx.check_hostname = False
        ssl_ctx.verify_mode = ssl.CERT_NONE
    heartbeat = args.heartbeat if args.heartbeat and args.heartbeat > 0 else None
    client: Any
    try:
        if args.coinbase:
            from .gateway import connect_coinbase

            assert client_id is not None and client_secret is not None
            client = await connect_coinbase(client_id, client_secret, trading_url=url,
                                            streams_url=args.streams_url or COINBASE_STREAMS, heartbeat=heartbeat, ssl=ssl_ctx)
        else:
            client = await connect(url, client_id=client_id, client_secret=client_secret, auth=args.auth, heartbeat=heartbeat, ssl=ssl_ctx)
    except AuthenticationError as exc:
        return _fail(f"authentication failed: Deribit error {exc.code} {exc.message}")
    except (OSError, asyncio.TimeoutError) as exc:
        return _fail(f"cannot connect to {url}: {getattr(exc, 'strerror', None) or exc or 'timed out'}")
    except DrbfastError as exc:
        return _fail(str(exc))
    try:
        books = [c for c in args.channels if c.startswith("book.")] if args.book else []
        plain = [c for c in args.channels if c not in books]
        try:
            for channel in books:
                instrument, grouped = parse_book_channel(channel)
                parts = channel.split(".")
                kw: dict[str, Any] = {"group": parts[2], "depth": int(parts[3])} if grouped else {}
                await client.order_book(instrument, parts[-1], on_update=top_of_book(args.book, emit), **kw)
            sub = await client.subscribe(*plain, callback=emit, strict=False) if plain else None
        except DeribitError as exc:
            return _fail(f"subscribe failed: Deribit error {exc.code} {exc.message}")
        except (SubscriptionRefused, ValueError) as exc:
            return _fail(str(exc))
        if sub is not None and sub.refused:
            print(f"drbfast stream: Deribit did not subscribe: {', '.join(sub.refused)}", file=sys.stderr)
        if not books and (sub is None or not sub.channels):
            return _fail("no channel was subscribed")
        try:
            await asyncio.wait_for(stop.wait(), args.duration)
        except asyncio.TimeoutError:
            pass
    finally:
        try:
            out.flush()
        except BrokenPipeError:
            _silence_stdout(out)
        stats = client.market.stats if args.coinbase else client.stats
        await client.close()
        elapsed = time.monotonic() - t0
        print(
            f"drbfast stream: {count} notifications in {elapsed:.1f} s; heartbeats {stats.heartbeats}, "
            f"test_requests answered {stats.replies_sent}/{stats.test_requests}, reconnects {stats.reconnects}, "
            f"parse errors {stats.parse_errors}, overflows {stats.overflows}",
            file=sys.stderr,
        )
    return 0


def top_of_book(n: int, emit: Any) -> Any:
    """``--book N``: a maintained book printed as its top N levels on every update."""

    def on_update(book: Any) -> None:
        emit(book.channel, {"change_id": book.change_id, "timestamp": book.timestamp, "synced": book.is_synced,
                            "bids": book.bids(n), "asks": book.asks(n)})

    return on_update


def _silence_stdout(out: TextIO) -> None:
    """After EPIPE, point stdout at /dev/null so the interpreter's final flush does not
    print a BrokenPipeError traceback."""
    try:
        fd = out.fileno()
    except (OSError, ValueError):
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, fd)
    os.close(devnull)


def run_stream(args: argparse.Namespace) -> int:
    """Run ``drbfast stream`` with parsed arguments; returns the exit status."""
    if args.coinbase:
        url = args.url or COINBASE
        client_id = os.environ.get("COINBASE_CDP_KEY_NAME") or None
        client_secret = os.environ.get("COINBASE_CDP_PRIVATE_KEY") or None
        key_file = os.environ.get("COINBASE_CDP_KEY_FILE")
        if client_secret is None and key_file:
            try:
                with open(key_file) as f:
                    client_secret = f.read()
            except OSError as exc:
                return _fail(f"cannot read COINBASE_CDP_KEY_FILE: {exc.strerror}")
        if client_id is None or client_secret is None:
            return _fail("--coinbase needs COINBASE_CDP_KEY_NAME and COINBASE_CDP_PRIVATE_KEY (or COINBASE_CDP_KEY_FILE)")
    else:
        url = args.url or (MAINNET if args.mainnet else TESTNET)
        client_id = args.client_id or os.environ.get("DERIBIT_CLIENT_ID") or None
        client_secret = args.client_secret or os.environ.get("DERIBIT_CLIENT_SECRET") or None
    if args.client_secret:
        print("drbfast stream: warning: --client-secret is readable by other local users (ps, /proc/PID/cmdline); "
              "set DERIBIT_CLIENT_SECRET instead", file=sys.stderr)
    if (client_id is None) != (client_secret is None):
        return _fail("give both a client id and a client secret (flags or DERIBIT_CLIENT_ID / DERIBIT_CLIENT_SECRET), or neither")
    if args.book is not None and args.book <= 0:
        return _fail("--book must be positive")
    if args.count is not None and args.count <= 0:
        return _fail("--count must be positive")
    if args.duration is not None and args.duration <= 0:
        return _fail("--duration must be positive")
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="drbfast: %(message)s")
    try:
        return asyncio.run(_stream(args, url, client_id, client_secret, sys.stdout))
    except KeyboardInterrupt:
        return 0
