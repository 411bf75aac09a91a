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
    """A ~1 KB book notification built from a live sample (levels repeated)."""
    path = BUILD / "book_1k.json"
    if not path.exists():
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
        i = 0
        while len(json.dumps(msg, separators=(",", ":"))) < size:
            side = data["bids"] if i % 2 == 0 else data["asks"]
            side.append(["change", round(86750.0 + (i if side is data["asks"] else -i) * 0.5, 1), float(100 + i * 10)])
            i += 1
        path.write_text(json.dumps(msg, separators=(",", ":")))
    return path
