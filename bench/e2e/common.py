"""What the end-to-end runner (bench/e2e/runner.py) and the order bench
(bench/e2e/orders.py) share: a client to run, the counts, a result row, and
:func:`run_one`, which runs one server process against one client process."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .build import certificate, payload

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Client:
    name: str
    argv: tuple[str, ...]
    loop: str = ""
    #: run only these modes (empty: all)
    modes: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        return f"{self.name} ({self.loop})" if self.loop else self.name


@dataclass
class Settings:
    idle: int
    warmup: int
    throughput: int
    flood: int
    every: int = 100
    timeout: float = 240.0


@dataclass
class Result:
    client: str
    transport: str
    placement: str
    mode: str
    figures: dict[str, Any] = field(default_factory=dict)
    error: str | None = None


def run_one(client: Client, *, server: Path, mode: str, tls: bool, placement: str, s: Settings, decode: str = "few",
            rtt_file: Path | None = None, sndbuf: int = 0, client_args: tuple[str, ...] = (),
            server_args: tuple[str, ...] = (), shown: str | None = None) -> Result:
    """One server process and one client process; returns the server's figures (and
    the client's own JSON line under "client")."""
    cert, key = certificate()
    srv_cmd = [str(server), "--port", "0", "--mode", "throughput" if mode.startswith("throughput") else mode, *server_args]
    if mode in ("slow", "serve"):
        pass
    elif mode == "idle":
        srv_cmd += ["--count", str(s.idle), "--warmup", str(s.warmup)]
    elif mode == "flood":
        srv_cmd += ["--count", str(s.flood), "--every", str(s.every), "--payload", str(payload())]
        if sndbuf:
            srv_cmd += ["--sndbuf", str(sndbuf)]
    else:
        srv_cmd += ["--count", str(s.throughput), "--payload", str(payload())]
    if tls:
        srv_cmd += ["--cert", str(cert), "--key", str(key)]
    if rtt_file is not None:
        srv_cmd += ["--out", str(rtt_file)]
    taskset = shutil.which("taskset")
    srv_cpu, cli_cpu = ("0", "0") if placement == "same-core" else ("0", "1")
    if taskset:
        srv_cmd = [taskset, "-c", srv_cpu, *srv_cmd]
    if shown is None:
        shown = mode if mode != "throughput" else f"throughput-{decode}"
        if sndbuf:
            shown += f"-sndbuf{sndbuf // 1024}k"
    result = Result(client.label, "tls" if tls else "tcp", placement, shown)
    srv = subprocess.Popen(srv_cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    cli = None
    try:
        assert srv.stdout is not None
        first = json.loads(srv.stdout.readline() or "{}")
        port = first.get("listening")
        if not port:
            result.error = "server did not start: " + (srv.stderr.read() if srv.stderr else "")
            return result
        cli_cmd = list(client.argv) + ["--port", str(port)]
        if client.name == "C floor":
            if tls:
                cli_cmd += ["--tls", str(cert)]
        else:
            cli_cmd += ["--decode", decode, *client_args]
            if tls:
                cli_cmd += ["--tls", str(cert)]
        if taskset:
            cli_cmd = [taskset, "-c", cli_cpu, *cli_cmd]
        env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
        cli = subprocess.Popen(cli_cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT)
        try:
            line = srv.stdout.readline()
            srv.wait(timeout=s.timeout)
        except subprocess.TimeoutExpired:
            result.error = "timed out"
            return result
        if not line:
            err = srv.stderr.read() if srv.stderr else ""
            cerr = ""
            try:
                cerr = cli.communicate(timeout=5)[1]
            except subprocess.TimeoutExpired:
                pass
            result.error = f"no figures: {err.strip()[:200]} {cerr.strip()[-300:]}"
            return result
        result.figures = json.loads(line)
        try:
            out, _ = cli.communicate(timeout=30)
            lines = [x for x in out.splitlines() if x.startswith("{")]
            if lines:
                result.figures["client"] = json.loads(lines[-1])
        except (subprocess.TimeoutExpired, ValueError):
            pass
        return result
    finally:
        for p in (cli, srv):
            if p is not None and p.poll() is None:
                p.kill()
                p.wait()


def have(module: str) -> bool:
    return importlib.util.find_spec(module) is not None
