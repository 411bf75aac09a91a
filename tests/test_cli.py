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


async def test_the_default_demo_never_goes_silent() -> None:
    """The whole default demo (steady feed, the 40,000-message flood with its 400
    test_requests, the close) in under 10 s and never silent for 2 s: the listener's
    own test_request answers used to put the credit budget 150,000 credits in debt, and
    the unsubscribe after the flood waited 19.6 s for it."""
    loop = asyncio.get_running_loop()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "drbfast", "demo", "--no-color",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    assert proc.stdout is not None
    t0 = last = loop.time()
    longest = 0.0
    lines: list[str] = []
    try:
        while True:
            line = await asyncio.wait_for(proc.stdout.readline(), TIMEOUT)
            now = loop.time()
            if not line:
                break
            longest = max(longest, now - last)
            last = now
            lines.append(line.decode())
        code = await asyncio.wait_for(proc.wait(), TIMEOUT)
    finally:
        if proc.returncode is None:
            proc.kill()
    took = last - t0
    assert code == 0, "".join(lines)
    assert "connection alive" in "".join(lines)
    assert longest < 2.0, f"silent for {longest:.1f} s:\n" + "".join(lines)
    assert took < 10.0, f"the demo took {took:.1f} s"


async def test_emulator_command_prints_its_url() -> None:
    code, out, err = await run("emulator", "--duration", "0.5", "--port", "0")
    assert code == 0, err
    assert out.startswith("drbfast emulator serving ws://127.0.0.1:")
    assert DEMO_CLIENT_SECRET not in out + err


async def test_help_lists_the_commands() -> None:
    code, out, err = await run("--help")
    assert code == 0 and "demo" in out and "stream" in out and "bench" in out


async def test_bench_outside_a_checkout_says_how_to_get_one(tmp_path: "os.PathLike[str]") -> None:
    """An installed drbfast has no bench/ beside it: `drbfast bench` says what to do."""
    import shutil

    import drbfast

    site = os.path.join(str(tmp_path), "site")
    shutil.copytree(os.path.dirname(drbfast.__file__), os.path.join(site, "drbfast"),
                    ignore=shutil.ignore_patterns("__pycache__", "*.c", "*.html"))
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", "import sys, drbfast.cli; sys.exit(drbfast.cli.main(['bench', '--quick']))",
        cwd=str(tmp_path), env={**os.environ, "PYTHONPATH": site},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), TIMEOUT)
    assert proc.returncode == 2, err
    assert b"source checkout" in err and b"pip install -e" in err


async def test_bench_hands_its_options_to_the_runner_as_given() -> None:
    """`drbfast bench` has no option list of its own to drift from the runner's: what
    follows "bench" is the runner's command line (its --help too)."""
    import drbfast.cli

    if drbfast.cli.bench_dir() is None:
        pytest.skip("an installed drbfast has no bench/ beside it (tested from the checkout)")
    code, out, err = await run("bench", "--help")
    assert code == 0 and "--results" in out and "--no-orders" in out and "drbfast bench" in out, err
    code, out, err = await run("bench", "--quick", "--repeat", "x")
    assert code == 2 and "--repeat: invalid int value: 'x'" in err


async def test_other_commands_still_refuse_unknown_options() -> None:
    code, out, err = await run("demo", "--results", "R.md")
    assert code == 2 and "unrecognized arguments: --results R.md" in err


async def test_stream_into_a_closed_pipe_exits_quietly(emulator: Emulator) -> None:
    """`drbfast stream ... | head -1`: once the reader has gone, stream stops without a
    traceback per notification."""
    read_fd, write_fd = os.pipe()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "drbfast", "stream", "ticker.BTC-PERPETUAL.100ms", "--url", emulator.url, "--heartbeat", "0.2",
        "--duration", "20", stdout=write_fd, stderr=asyncio.subprocess.PIPE)
    os.close(write_fd)
    with os.fdopen(read_fd, "rb") as reader:
        first = await asyncio.get_running_loop().run_in_executor(None, reader.readline)
    assert json.loads(first)["channel"] == "ticker.BTC-PERPETUAL.100ms"
    _, err = await asyncio.wait_for(proc.communicate(), TIMEOUT)
    assert proc.returncode == 0
    assert b"Traceback" not in err and b"BrokenPipeError" not in err


async def test_secret_flag_and_cleartext_credentials_are_warned_about(emulator: Emulator) -> None:
    code, out, err = await run("stream", "ticker.BTC-PERPETUAL.100ms", "--url", emulator.url, "--heartbeat", "0", "--count", "1",
                               "--auth", "credentials", "--client-id", DEMO_CLIENT_ID, "--client-secret", DEMO_CLIENT_SECRET)
    assert code == 0, err
    assert "DERIBIT_CLIENT_SECRET" in err and "/proc" in err
    assert "unencrypted" in err
    assert DEMO_CLIENT_SECRET not in out + err


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


async def test_stream_book_prints_the_maintained_top_of_book(emulator: Emulator) -> None:
    code, out, err = await run("stream", "book.ETH-PERPETUAL.100ms", "ticker.BTC-PERPETUAL.100ms", "--url", emulator.url,
                               "--heartbeat", "0.2", "--book", "3", "--count", "10")
    assert code == 0, err
    books = [json.loads(line) for line in out.splitlines() if line.startswith('{"channel":"book.')]
    assert books, out
    for msg in books:
        data = msg["data"]
        assert set(data) == {"change_id", "timestamp", "synced", "bids", "asks"}
        assert 0 < len(data["bids"]) <= 3 and 0 < len(data["asks"]) <= 3
        assert data["bids"][0][0] < data["asks"][0][0]
        assert [p for p, _ in data["bids"]] == sorted((p for p, _ in data["bids"]), reverse=True)
    code, _, err = await run("stream", "book.ETH-PERPETUAL.100ms", "--url", emulator.url, "--book", "0")
    assert code == 1 and "--book" in err


async def test_coinbase_emulator_stream_and_demo() -> None:
    """The README's two Coinbase commands, against `drbfast emulator --coinbase`."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "drbfast", "emulator", "--coinbase", "--min-heartbeat", "0.2", "--duration", "30",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        assert proc.stdout is not None
        lines = [(await asyncio.wait_for(proc.stdout.readline(), TIMEOUT)).decode() for _ in range(5)]
        gateway = next(line for line in lines if "Coinbase gateway" in line).split()
        trading, streams = gateway[gateway.index("trading") + 1], gateway[gateway.index("streams") + 1]
        key = dict(part.split("=", 1) for part in next(line for line in lines if "CDP key" in line).split()[2:])
        assert os.stat(key["COINBASE_CDP_KEY_FILE"]).st_mode & 0o077 == 0, "the key file is private"
        code, out, err = await run("stream", "--coinbase", "--url", trading, "--streams-url", streams, "--heartbeat", "0.2",
                                   "ticker.BTC-PERPETUAL.100ms", "user.orders.BTC-PERPETUAL.raw", "--count", "3", env=key)
        assert code == 0, err
        assert [json.loads(line)["channel"] for line in out.splitlines()] == ["ticker.BTC-PERPETUAL.100ms"] * 3
        assert "PRIVATE KEY" not in out + err
        code, _, err = await run("stream", "--coinbase", "--url", trading, "ticker.BTC-PERPETUAL.100ms", "--count", "1",
                                 env={"COINBASE_CDP_KEY_NAME": "", "COINBASE_CDP_KEY_FILE": ""})
        assert code == 1 and "COINBASE_CDP_KEY_NAME" in err
    finally:
        proc.terminate()
        await proc.wait()
    code, out, err = await run("demo", "--coinbase")
    assert code == 0, out + err
    assert "cancelled" in out and "PRIVATE KEY" not in out + err
