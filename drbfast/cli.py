"""The ``drbfast`` command: ``demo``, ``stream``, ``emulator`` and ``bench``.

Each subcommand lives in its own module; this one only parses arguments and
dispatches, so ``drbfast --help`` stays fast and imports nothing heavy.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path


def _add_demo(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "demo",
        help="run the embedded emulator and show drbfast keeping a connection alive",
        description="Starts the embedded Deribit emulator on 127.0.0.1, connects with "
        "heartbeats on, subscribes to a book and a ticker, shows live progress, then "
        "floods the connection while the consumer is slow and shows that test_requests "
        "are still answered at once. No account and no network needed.",
    )
    p.add_argument("--seconds", type=float, default=6.0, help="how long the demo runs (default 6)")
    p.add_argument("--heartbeat", type=float, default=1.0, help="heartbeat interval in seconds (default 1; the emulator's test minimum allows it)")
    p.add_argument("--no-color", action="store_true", help="plain output")
    p.add_argument("--coinbase", action="store_true", help="the emulator in Coinbase gateway mode: two hosts, CDP JWT auth")
    p.set_defaults(func=_run_demo)


def _run_demo(args: argparse.Namespace) -> int:
    if args.coinbase:
        from .demo import run_coinbase_demo

        return run_coinbase_demo(heartbeat=args.heartbeat)
    from .demo import run_demo

    return run_demo(seconds=args.seconds, heartbeat=args.heartbeat, color=not args.no_color)


def _add_stream(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "stream",
        help="print notifications of Deribit channels as JSON lines",
        description="Prints each notification as one JSON line {\"channel\": ..., \"data\": ...} "
        "on stdout (nothing else goes to stdout) and a summary on stderr at exit. "
        "Credentials come from --client-id/--client-secret or DERIBIT_CLIENT_ID / "
        "DERIBIT_CLIENT_SECRET; with them the session authenticates and uses private/subscribe.",
    )
    p.add_argument("channels", nargs="+", metavar="CHANNEL", help="e.g. book.BTC-PERPETUAL.100ms")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--url", help="any ws:// or wss:// URL")
    where.add_argument("--testnet", action="store_true", help="Deribit testnet (the default)")
    where.add_argument("--mainnet", action="store_true", help="Deribit production")
    p.add_argument("--heartbeat", type=float, default=10.0, help="public/set_heartbeat interval in seconds; 0 disables (default 10)")
    p.add_argument("--client-id", help="API key id (or DERIBIT_CLIENT_ID)")
    p.add_argument("--client-secret", help="API key secret; prefer the DERIBIT_CLIENT_SECRET environment variable: a flag is "
                   "readable by other local users in /proc/PID/cmdline. Never printed")
    p.add_argument("--auth", choices=("signature", "credentials"), default="signature", help="grant type (default signature: the secret never goes on the wire)")
    p.add_argument("--count", type=int, default=None, help="stop after N notifications")
    p.add_argument("--duration", type=float, default=None, help="stop after S seconds")
    p.add_argument("--insecure", action="store_true", help="do not verify the TLS certificate (for a local emulator with --tls)")
    p.add_argument("--coinbase", action="store_true",
                   help="Coinbase's Deribit gateway: market data from the streams host, user.* channels from the trading "
                        "host, authenticated with a CDP API key: COINBASE_CDP_KEY_NAME and COINBASE_CDP_PRIVATE_KEY (or "
                        "COINBASE_CDP_KEY_FILE). --url sets the trading host, --streams-url the streams host")
    p.add_argument("--streams-url", help="with --coinbase: the streams host (default Coinbase's)")
    p.add_argument("--book", type=int, default=None, metavar="N", help="keep a local book for each book.* channel and print "
                   "its top N levels on every update ({\"channel\", \"data\": {\"bids\", \"asks\", \"change_id\", ...}})")
    p.set_defaults(func=_run_stream)


def _run_stream(args: argparse.Namespace) -> int:
    from .stream import run_stream

    return run_stream(args)


def _add_emulator(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from .emulator.cli import add_arguments

    p = sub.add_parser(
        "emulator",
        help="run the embedded Deribit emulator in the foreground",
        description="A local Deribit JSON-RPC v2 server on 127.0.0.1 that enforces "
        "heartbeats and cancel-on-disconnect and can inject faults.",
    )
    add_arguments(p)
    p.set_defaults(func=_run_emulator)


def _run_emulator(args: argparse.Namespace) -> int:
    from .emulator.cli import run

    return run(args)


def _add_bench(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    # Its options are the runner's (bench/e2e/runner.py, `drbfast bench --help` from a
    # checkout): main() hands everything after "bench" to it as given.
    p = sub.add_parser(
        "bench",
        add_help=False,
        help="end-to-end comparison with other Python WebSocket stacks and a C floor",
        description="Runs every client in its own process against a minimal C server on "
        "127.0.0.1 (idle reply latency, throughput, floods, TLS, slow consumers, order round "
        "trips) and prints tables of ratios to the C floor. Needs the source checkout, a C "
        "compiler and `pip install -e \".[bench]\"`.",
    )
    p.set_defaults(func=_run_bench, runner_argv=[])


def bench_dir() -> Path | None:
    """The ``bench/`` folder of the source checkout this package runs from, if any."""
    root = Path(__file__).resolve().parent.parent
    candidate = root / "bench"
    return candidate if (candidate / "e2e").is_dir() else None


def _run_bench(args: argparse.Namespace) -> int:
    where = bench_dir()
    if where is None:
        print("drbfast bench: the end-to-end benchmark runs from the source checkout "
              "(bench/e2e next to drbfast/); clone the repository and `pip install -e \".[bench]\"`.",
              file=sys.stderr)
        return 2
    sys.path.insert(0, str(where.parent))
    import importlib

    bench_main = importlib.import_module("bench.e2e.runner").main
    return int(bench_main(list(args.runner_argv)))


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``drbfast`` command."""
    parser = argparse.ArgumentParser(
        prog="drbfast",
        description="Deribit connection whose heartbeats are answered in C.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_demo(sub)
    _add_stream(sub)
    _add_emulator(sub)
    _add_bench(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``drbfast`` command; returns the exit status."""
    parser = build_parser()
    args, rest = parser.parse_known_args(argv)
    if args.command == "bench":
        args.runner_argv = rest  # the runner parses (and documents) its own options
    elif rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        return 130
