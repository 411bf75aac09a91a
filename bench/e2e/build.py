"""Compile the bench's C server and client, and make its TLS certificate and payload."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

HERE = Path(__file__).resolve().parent
BENCH = HERE.parent
SRC = BENCH / "c"
BUILD = BENCH / "build"
SAMPLES = BENCH.parent / "tests" / "samples"


def compile_c() -> tuple[Path, Path]:
    """Build ``server`` and ``client`` into bench/build (cached on source mtimes)."""
    cc = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        raise SystemExit("drbfast bench: no C compiler (cc/gcc) found; install one (e.g. apt-get install gcc)")
    BUILD.mkdir(exist_ok=True)
    out = []
    for name in ("server", "client"):
        src, exe = SRC / f"{name}.c", BUILD / name
        deps = [src, SRC / "wsbench.h"]
        if not exe.exists() or exe.stat().st_mtime < max(d.stat().st_mtime for d in deps):
            cmd = [cc, "-O2", "-Wall", "-Wextra", "-o", str(exe), str(src), "-lssl", "-lcrypto"]
            res = subprocess.run(cmd, capture_output=True, text=True)
            if res.returncode != 0:
                raise SystemExit(f"drbfast bench: compiling {src.name} failed (OpenSSL headers: apt-get install libssl-dev)\n{res.stderr}")
        out.append(exe)
    return out[0], out[1]


def certificate() -> tuple[Path, Path]:
    """A self-signed certificate for localhost (made once, with `cryptography`)."""
    cert, key = BUILD / "emulator-cert.pem", BUILD / "emulator-key.pem"
    if not cert.exists() or not key.exists():
        from drbfast.emulator.tls import make_self_signed

        BUILD.mkdir(exist_ok=True)
        make_self_signed(str(BUILD))
    return cert, key


def payload(size: int = 1000) -> Path:
    """A ~1 KB book notification built from a live sample (levels repeated). The server
    sends it over and over, so its ``prev_change_id`` is its own ``change_id``: each
    copy continues the one before, and a client that checks book continuity (as
    ``drbfast.connect`` does) delivers every one instead of resyncing after the first.
    Rebuilt when this changes."""
    path = BUILD / "book_1k.json"
    BUILD.mkdir(exist_ok=True)
    src = SAMPLES / "sub_book_change_live.json"
    msg = json.loads(src.read_text()) if src.exists() else {
        "jsonrpc": "2.0", "method": "subscription",
        "params": {"channel": "book.BTC-PERPETUAL.100ms", "data": {"timestamp": 1, "type": "change", "prev_change_id": 1,
                                                                  "change_id": 2, "instrument_name": "BTC-PERPETUAL", "bids": [], "asks": []}}}
    data = msg["params"]["data"]
    data.setdefault("bids", [])
    data.setdefault("asks", [])
    if not data["bids"]:
        data["bids"].append(["change", 86750.0, 1230.0])
    data["prev_change_id"] = data["change_id"]
    i = 0
    while len(json.dumps(msg, separators=(",", ":"))) < size:
        side = data["bids"] if i % 2 == 0 else data["asks"]
        side.append(["change", round(86750.0 + (i if side is data["asks"] else -i) * 0.5, 1), float(100 + i * 10)])
        i += 1
    text = json.dumps(msg, separators=(",", ":"))
    if not path.exists() or path.read_text() != text:
        path.write_text(text)
    return path


def mix() -> Path:
    """The slow-consumer feed: 20 messages of ~200 B, one a line, cycled by the server:
    12 trades, 2 tickers, 2 book changes, 1 index price (public), 2 private order
    updates and 1 reply (what drbfast's lanes put first). Rebuilt when this changes."""
    path = BUILD / "mix_200b.jsonl"
    BUILD.mkdir(exist_ok=True)

    def note(channel: str, data: object) -> str:
        return json.dumps({"jsonrpc": "2.0", "method": "subscription", "params": {"channel": channel, "data": data}},
                          separators=(",", ":"))

    trade = [{"trade_seq": 1, "trade_id": "BTC-1", "timestamp": 1764547200000, "tick_direction": 1, "price": 86750.5,
              "mark_price": 86751.1, "instrument_name": "BTC-PERPETUAL", "index_price": 86740.2, "direction": "buy",
              "amount": 10.0}]
    ticker = {"timestamp": 1764547200000, "instrument_name": "BTC-PERPETUAL", "best_bid_price": 86750.0,
              "best_ask_price": 86750.5, "best_bid_amount": 1230.0, "best_ask_amount": 400.0, "mark_price": 86751.1,
              "index_price": 86740.2}
    # prev_change_id == change_id: the cycled copies continue each other (see payload())
    book = {"type": "change", "timestamp": 1764547200000, "prev_change_id": 2, "change_id": 2,
            "instrument_name": "ETH-PERPETUAL", "bids": [["change", 3050.5, 12000.0]], "asks": [["delete", 3051.0, 0.0]]}
    order = {"order_id": "ETH-123456789", "order_state": "open", "instrument_name": "ETH-PERPETUAL", "price": 3050.5,
             "amount": 100.0, "filled_amount": 0.0, "direction": "buy", "label": "q1"}
    lines = [note("trades.BTC-PERPETUAL.raw", trade)] * 12
    lines += [note("ticker.BTC-PERPETUAL.raw", ticker)] * 2
    lines += [note("book.ETH-PERPETUAL.raw", book)] * 2
    lines += [note("deribit_price_index.btc_usd", {"index_name": "btc_usd", "price": 86740.2, "timestamp": 1764547200000})]
    lines += [note("user.orders.ETH-PERPETUAL.raw", order)] * 2
    lines += [json.dumps({"jsonrpc": "2.0", "id": 42, "result": order, "usIn": 1, "usOut": 2, "usDiff": 1, "testnet": True},
                         separators=(",", ":"))]
    order_ = [lines[i] for i in (0, 12, 1, 14, 2, 17, 3, 4, 16, 5, 13, 6, 19, 7, 15, 8, 18, 9, 10, 11)]
    text = "\n".join(order_) + "\n"
    if not path.exists() or path.read_text() != text:
        path.write_text(text)
    return path
