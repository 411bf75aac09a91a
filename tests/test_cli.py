"""The ``drbfast`` command, run as a user runs it (a subprocess) against the emulator."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys

import pytest

from drbfast.emulator import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, Emulator

TIMEOUT = 60.0


async def run(*args: str, env: dict[str, str] | None = None, timeout: float = TIMEOUT, interrupt_after: float | None = None) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "drbfast", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={**os.environ, **(env or {})},
    )
    if interrupt_after is not None:
        await asyncio.sleep(interrupt_after)
        proc.send_signal(signal.SIGINT)
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except asyncio.TimeoutError:
        proc.kill()
        raise
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_stream_prints_json_lines_only(emulator: Emulator) -> None:
    code, out, err = await run("stream", "ticker.BTC-PERPETUAL.100ms", "book.ETH-PERPETUAL.100ms", "--url", emulator.url,
                               "--heartbeat", "0.2", "--count", "12")
    assert code == 0, err
    lines = out.splitlines()
    assert len(lines) == 12
    for line in lines:
        msg = json.loads(line)
        assert set(msg) == {"channel", "data"}
        assert msg["channel"] in ("ticker.BTC-PERPETUAL.100ms", "book.ETH-PERPETUAL.100ms")
    assert "12 notifications" in err and "test_requests answered" in err


async def test_stream_with_credentials_uses_private_subscribe_and_hides_the_secret(emulator: Emulator) -> None:
    code, out, err = await run("stream", "user.orders.BTC-PERPETUAL.raw", "ticker.BTC-PERPETUAL.100ms", "--url", emulator.url,
                               "--heartbeat", "0", "--count", "3", env={"DERIBIT_CLIENT_ID": DEMO_CLIENT_ID, "DERIBIT_CLIENT_SECRET": DEMO_CLIENT_SECRET})
    assert code == 0, err
    assert DEMO_CLIENT_SECRET not in out + err
    conn = emulator.history[-1]
    subs = [m["params"]["channels"] for m in conn.received if m.get("method") == "private/subscribe"]
    assert subs and "user.orders.BTC-PERPETUAL.raw" in subs[0]
    assert conn.received[1]["params"]["grant_type"] == "client_signature"


async def test_stream_duration_and_sigint_exit_zero(emulator: Emulator) -> None:
    code, out, err = await run("stream", "ticker.BTC-PERPETUAL.100ms", "--url", emulator.url, "--duration", "0.5")
    assert code == 0, err
    assert out.count("\n") >= 1
    code, out, err = await run("stream", "ticker.BTC-PERPETUAL.100ms", "--url", emulator.url, interrupt_after=1.5)
    assert code == 0, err


async def test_stream_failures_have_one_line_reasons(emulator: Emulator) -> None:
    code, out, err = await run("stream", "ticker.BTC-PERPETUAL.100ms", "--url", emulator.url, "--client-id", DEMO_CLIENT_ID,
                               "--client-secret", "not-the-secret-123", "--count", "1")
    assert code == 1 and out == ""
    assert "authentication failed" in err and "13004" in err
    assert "not-the-secret-123" not in err
    code, out, err = await run("stream", "ticker.BTC-PERPETUAL.100ms", "--url", "ws://127.0.0.1:9/ws/api/v2", "--count", "1")
    assert code == 1 and "cannot connect" in err and out == ""
    code, out, err = await run("stream", "--count", "x", "ticker.BTC-PERPETUAL.100ms")
    assert code == 2 and out == ""
    code, out, err = await run("stream", "ticker.NOPE.100ms", "--url", emulator.url, "--count", "1")
    assert code == 1 and "no channel was subscribed" in err


async def test_demo_runs_and_exits_zero() -> None:
    code, out, err = await run("demo", "--seconds", "2", "--no-color")
    assert code == 0, out + err
    assert "flood" in out and "connection alive" in out


async def test_emulator_command_prints_its_url() -> None:
    code, out, err = await run("emulator", "--duration", "0.5", "--port", "0")
    assert code == 0, err
    assert out.startswith("drbfast emulator serving ws://127.0.0.1:")
    assert DEMO_CLIENT_SECRET not in out + err


async def test_bench_without_checkout_or_help() -> None:
    code, out, err = await run("--help")
    assert code == 0 and "demo" in out and "stream" in out and "bench" in out


async def test_emulator_fault_flags_reach_a_client() -> None:
    import websockets

    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "drbfast", "emulator", "--test-request-rate", "20", "--close-at", "0.6", "--duration", "5",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        assert proc.stdout is not None
        line = (await asyncio.wait_for(proc.stdout.readline(), TIMEOUT)).decode()
        url = line.split()[-1]
        got: list[str] = []
        async with websockets.connect(url) as ws:
            with pytest.raises(websockets.ConnectionClosed) as info:
                while True:
                    msg = json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT))
                    if msg.get("method") != "heartbeat":
                        continue
                    got.append(msg["params"]["type"])
                    await ws.send(json.dumps({"jsonrpc": "2.0", "id": len(got), "method": "public/test", "params": {}}))
        assert got.count("test_request") >= 5
        assert info.value.rcvd is not None and (info.value.rcvd.code, info.value.rcvd.reason) == (1012, "maintenance")
    finally:
        proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(proc.wait(), TIMEOUT)
