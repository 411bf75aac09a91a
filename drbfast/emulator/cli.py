"""``drbfast emulator``: run the emulator in the foreground and print its URL."""

from __future__ import annotations

from typing import Any

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import Sequence

from .config import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, EmulatorConfig

__all__ = ["add_arguments", "main", "run"]


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Add the emulator's options to ``p``."""
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=0, help="port (default: a free one, printed)")
    p.add_argument("--min-heartbeat", type=float, default=10.0, help="smallest public/set_heartbeat interval accepted (production: 10)")
    p.add_argument("--seed", type=int, default=1, help="seed of the synthetic market")
    p.add_argument("--client-id", default=DEMO_CLIENT_ID, help=f"API key id accepted (default {DEMO_CLIENT_ID})")
    p.add_argument("--client-secret", default=None, help="API key secret accepted (default: the documented demo secret); never printed")
    p.add_argument("--token-ttl", type=float, default=31_536_000.0, help="access token lifetime in seconds")
    p.add_argument("--tls", action="store_true", help="serve wss:// (a self-signed certificate is made unless --certfile is given)")
    p.add_argument("--certfile", help="PEM certificate for --tls")
    p.add_argument("--keyfile", help="PEM private key for --tls")
    p.add_argument("--credit-cost", type=int, default=500, help="credits per request (production: 500)")
    p.add_argument("--credit-cap", type=int, default=50_000, help="credit pool (production: 50,000)")
    p.add_argument("--credit-refill", type=float, default=10_000.0, help="credits refilled per second (production: 10,000)")
    p.add_argument("--idle-timeout", type=float, default=60.0,
                   help="drop a connection with no subscription and no heartbeat that sent nothing this long "
                        "(production: ~60 s; 0 disables)")
    p.add_argument("--max-connections-per-ip", type=int, default=32,
                   help="simultaneous connections per IP before HTTP 429 (production: 32; 0 disables)")
    p.add_argument("--coinbase", action="store_true",
                   help="Coinbase's Deribit gateway: trading and streams hosts, CDP JWT auth; a test CDP key is made "
                        "and its private key written to a file (path printed) for `drbfast stream --coinbase`")
    p.add_argument("--quiet", action="store_true", help="do not log what faults and limits do (closes, test_request times)")
    p.add_argument("--drop-after", type=int, default=None, metavar="N", help="fault: drop every connection after sending it N messages")
    p.add_argument("--drop-at", type=float, default=None, metavar="S", help="fault: drop every connection S seconds after it opens")
    p.add_argument("--delay", type=float, default=0.0, metavar="S", help="fault: answer every request S seconds late")
    p.add_argument("--close-at", type=float, default=None, metavar="S", help="fault: close every connection S seconds after it opens with 1012 'maintenance'")
    p.add_argument("--test-request-rate", type=float, default=None, metavar="HZ",
                   help="fault: send test_requests at HZ per second whatever the heartbeat interval (an unanswered one closes with 4000 after 1 s)")
    p.add_argument("--duration", type=float, default=None, help="stop after S seconds (default: run until SIGINT/SIGTERM)")


def _config(args: argparse.Namespace) -> EmulatorConfig:
    if args.certfile and not args.keyfile:
        raise SystemExit("drbfast emulator: --certfile needs --keyfile")
    return EmulatorConfig(
        host=args.host,
        port=args.port,
        min_heartbeat=args.min_heartbeat,
        seed=args.seed,
        client_id=args.client_id,
        client_secret=args.client_secret if args.client_secret is not None else DEMO_CLIENT_SECRET,
        token_ttl=args.token_ttl,
        tls=args.tls or bool(args.certfile),
        certfile=args.certfile,
        keyfile=args.keyfile,
        credit_cost=args.credit_cost,
        credit_cap=args.credit_cap,
        credit_refill=args.credit_refill,
        idle_timeout=args.idle_timeout or None,
        max_connections_per_ip=args.max_connections_per_ip or None,
        record=False,
        gateway=args.coinbase,
    )


def _write_cdp_key(emu: Any) -> tuple[str, str]:
    """A test CDP key the gateway accepts, its private key in a file only we can read."""
    import os
    import tempfile

    name, pem = emu.add_cdp_key()
    fd, path = tempfile.mkstemp(prefix="drbfast-cdp-", suffix=".pem")
    with os.fdopen(fd, "w") as f:  # mkstemp makes it 0600
        f.write(pem)
    return name, path


async def _serve(args: argparse.Namespace) -> int:
    from .emulator import Emulator

    if not args.quiet:
        # Each fault's effect on stderr: closes with code and reason, test_request
        # answer times, missed deadlines, drops, 429s.
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s.%(msecs)03d %(message)s", "%H:%M:%S"))
        events = logging.getLogger("drbfast.emulator.events")
        events.addHandler(handler)
        events.setLevel(logging.INFO)
        events.propagate = False
    emu = Emulator(_config(args))
    await emu.start()
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    if args.drop_after is not None or args.drop_at is not None or args.delay or args.close_at is not None or args.test_request_rate:
        loop.create_task(_apply_faults(emu, args, stop))
    print(f"drbfast emulator serving {emu.url}", flush=True)
    if emu.config.http:
        print(f"  HTTP API: {emu.http_url}", flush=True)
    print(f"  API key: client_id={emu.config.client_id} (secret: see --client-secret or docs)", flush=True)
    if emu.config.tls:
        print(f"  TLS: trust this CA certificate: {emu.ca_path}", flush=True)
    if emu.config.gateway:
        name, path = _write_cdp_key(emu)
        print(f"  Coinbase gateway: trading {emu.url}  streams {emu.streams_url}", flush=True)
        print(f"  CDP key: COINBASE_CDP_KEY_NAME={name} COINBASE_CDP_KEY_FILE={path}", flush=True)
    try:
        if args.duration is not None:
            try:
                await asyncio.wait_for(stop.wait(), args.duration)
            except asyncio.TimeoutError:
                pass
        else:
            await stop.wait()
    finally:
        await emu.stop()
    print("drbfast emulator stopped", file=sys.stderr)
    return 0


async def _apply_faults(emu: object, args: argparse.Namespace, stop: asyncio.Event) -> None:
    from .emulator import Emulator

    assert isinstance(emu, Emulator)
    seen: set[int] = set()
    while not stop.is_set():
        for conn in list(emu.connections):
            if conn.id in seen:
                continue
            seen.add(conn.id)
            if args.delay:
                emu.faults.delay_responses(args.delay, conn)
            if args.drop_after is not None:
                emu.faults.drop(conn, after_messages=args.drop_after)
            if args.drop_at is not None:
                emu.faults.drop(conn, at=args.drop_at)
            if args.close_at is not None:
                asyncio.get_running_loop().call_later(args.close_at, emu.faults.close, conn, 1012, "maintenance")
            if args.test_request_rate:
                rate = args.test_request_rate
                emu.faults.send_test_requests(conn, count=int(rate * 86_400), rate_hz=rate, deadline=1.0)
        await asyncio.sleep(0.05)


def run(args: argparse.Namespace) -> int:
    """Run the emulator with parsed arguments; returns the exit status."""
    try:
        return asyncio.run(_serve(args))
    except OSError as exc:
        print(f"drbfast emulator: cannot listen on {args.host}:{args.port}: {exc.strerror or exc}", file=sys.stderr)
        return 1


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m drbfast.emulator.cli``: the same as ``drbfast emulator``."""
    parser = argparse.ArgumentParser(prog="drbfast emulator", description=__doc__)
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
