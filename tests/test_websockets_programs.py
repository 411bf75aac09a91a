"""Deribit programs written for ``websockets``, run unchanged except for the import.

Each program below is source text as a user would write it, in the style of Deribit's
documentation samples and of SDKs on PyPI: ``while websocket.open``, ``ping_interval=10``,
``except websockets.exceptions.InvalidStatusCode``, ``async for ws in connect()``
reconnects, an SDK-like client over wss with ``open_timeout``. The test swaps
``import websockets`` for ``from drbfast import websockets`` and nothing else, runs it
against the emulator while test_requests are injected, and checks that the program
worked and never saw a heartbeat or test_request (the compiled listener answered them).
"""

from __future__ import annotations

import asyncio
import json
import textwrap
from typing import Any

from drbfast.emulator import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, Emulator, EmulatorConfig

from .conftest import TIMEOUT


def load(source: str) -> dict[str, Any]:
    """Run the program's module body with only its import changed."""
    source = textwrap.dedent(source)
    assert source.count("import websockets\n") == 1
    namespace: dict[str, Any] = {}
    exec(compile(source.replace("import websockets\n", "from drbfast import websockets\n"), "<program>", "exec"),
         namespace)
    return namespace


def heartbeat_traffic(messages: list[Any]) -> list[Any]:
    return [m for m in messages if isinstance(m, dict) and m.get("method") == "heartbeat"]


async def connections_of(emu: Emulator, count: int) -> None:
    for _ in range(int(TIMEOUT / 0.005)):
        if len(emu.connections) >= count:
            return
        await asyncio.sleep(0.005)
    raise AssertionError("the program did not connect")


DOCS_SAMPLE = """
import asyncio
import json
import websockets

msg = {
    "jsonrpc": "2.0",
    "id": 42,
    "method": "public/subscribe",
    "params": {"channels": ["ticker.BTC-PERPETUAL.100ms"]},
}

async def call_api(url, msg, seen):
    async with websockets.connect(url) as websocket:
        await websocket.send(msg)
        while websocket.open:
            response = await websocket.recv()
            seen.append(json.loads(response))
            if len(seen) >= 25:
                await websocket.close()
"""


async def test_docs_sample_with_while_ws_open() -> None:
    program = load(DOCS_SAMPLE)
    async with Emulator(EmulatorConfig(min_heartbeat=0.1, tick_interval=0.01)) as emu:
        seen: list[Any] = []
        task = asyncio.create_task(program["call_api"](emu.url, json.dumps(program["msg"]), seen))
        await connections_of(emu, 1)
        sender = emu.faults.send_test_requests(count=10, rate_hz=100)
        await asyncio.wait_for(task, TIMEOUT)
        await sender
    assert seen[0]["id"] == 42 and seen[0]["result"] == ["ticker.BTC-PERPETUAL.100ms"]
    assert len(seen) == 25 and heartbeat_traffic(seen) == []
    assert all(m["params"]["channel"] == "ticker.BTC-PERPETUAL.100ms" for m in seen[1:])


AUTHENTICATED = """
import asyncio
import json
import websockets

async def run(url, client_id, client_secret, seen, answered):
    async with websockets.connect(url, ping_interval=10) as ws:
        await ws.send(json.dumps({"jsonrpc": "2.0", "id": 1, "method": "public/auth", "params": {
            "grant_type": "client_credentials", "client_id": client_id, "client_secret": client_secret}}))
        await ws.send(json.dumps({"jsonrpc": "2.0", "id": 2, "method": "public/set_heartbeat",
                                  "params": {"interval": 10}}))
        await ws.send(json.dumps({"jsonrpc": "2.0", "id": 3, "method": "private/subscribe",
                                  "params": {"channels": ["user.orders.BTC-PERPETUAL.raw",
                                                          "ticker.BTC-PERPETUAL.100ms"]}}))
        while ws.open:
            message = json.loads(await ws.recv())
            if message.get("method") == "heartbeat":
                if message["params"]["type"] == "test_request":
                    answered.append(message)
                    await ws.send(json.dumps({"jsonrpc": "2.0", "id": 99, "method": "public/test"}))
                continue
            seen.append(message)
            if len(seen) >= 40:
                break
"""


async def test_authenticated_program_that_answers_its_own_heartbeats() -> None:
    program = load(AUTHENTICATED)
    async with Emulator(EmulatorConfig(min_heartbeat=0.1, tick_interval=0.01)) as emu:
        seen: list[Any] = []
        answered: list[Any] = []
        task = asyncio.create_task(program["run"](emu.url, DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, seen, answered))
        await connections_of(emu, 1)
        sender = emu.faults.send_test_requests(count=10, rate_hz=100, deadline=1.0)
        await asyncio.wait_for(task, TIMEOUT)
        await sender
        rtts = emu.connections[0].test_request_rtts_ns if emu.connections else None
    replies = {m["id"]: m for m in seen if "id" in m}
    assert "access_token" in replies[1]["result"] and replies[2]["result"] == "ok"
    assert answered == [] and heartbeat_traffic(seen) == []
    assert rtts is None or len(rtts) >= 1


FEED = """
import asyncio
import json
import websockets

async def feed(url, channel, seen, connections, stop_after):
    async for ws in websockets.connect(url, ping_interval=10, ping_timeout=60):
        connections.append(ws)
        try:
            await ws.send(json.dumps({"jsonrpc": "2.0", "id": 1, "method": "public/subscribe",
                                      "params": {"channels": [channel]}}))
            async for raw in ws:
                seen.append(json.loads(raw))
                if len(seen) >= stop_after:
                    return
        except (websockets.exceptions.ConnectionClosed, websockets.exceptions.InvalidStatusCode):
            continue
"""


async def test_two_feeds_that_reconnect_with_async_for() -> None:
    program = load(FEED)
    async with Emulator(EmulatorConfig(min_heartbeat=0.1, tick_interval=0.01)) as emu:
        seen: dict[str, list[Any]] = {"ticker.BTC-PERPETUAL.100ms": [], "book.BTC-PERPETUAL.100ms": []}
        conns: dict[str, list[Any]] = {name: [] for name in seen}
        tasks = [asyncio.create_task(program["feed"](emu.url, name, seen[name], conns[name], 60)) for name in seen]
        await connections_of(emu, 2)
        for conn in list(emu.connections):
            emu.faults.send_test_requests(conn, count=5, rate_hz=100)
        await asyncio.sleep(0.1)
        emu.faults.drop(emu.connections[0])  # one feed loses its socket
        for _ in range(int(TIMEOUT / 0.005)):
            if sum(len(c) for c in conns.values()) == 3 and len(emu.connections) == 2:
                break
            await asyncio.sleep(0.005)
        for conn in list(emu.connections):
            emu.faults.send_test_requests(conn, count=5, rate_hz=100)
        await asyncio.wait_for(asyncio.gather(*tasks), TIMEOUT)
    assert sorted(len(c) for c in conns.values()) == [1, 2]
    for messages in seen.values():
        assert heartbeat_traffic(messages) == []
        assert len(messages) == 60


SDK = """
import asyncio
import itertools
import json
import websockets

class DeribitClient:
    def __init__(self, url, ssl=None):
        self.url = url
        self.ssl = ssl
        self.ids = itertools.count(1)
        self.ws = None
        self.notifications = []

    async def connect(self):
        try:
            self.ws = await websockets.connect(self.url, ssl=self.ssl, open_timeout=5,
                                               ping_interval=20, ping_timeout=20, max_size=2 ** 24)
        except websockets.exceptions.InvalidStatusCode as exc:
            raise RuntimeError(f"Deribit refused the connection: {exc.status_code}") from exc

    async def call(self, method, params=None):
        request_id = next(self.ids)
        await self.ws.send(json.dumps({"jsonrpc": "2.0", "id": request_id, "method": method,
                                       "params": params or {}}))
        while True:
            message = json.loads(await asyncio.wait_for(self.ws.recv(), 5))
            if message.get("id") == request_id:
                if "error" in message:
                    raise RuntimeError(message["error"])
                return message["result"]
            self.notifications.append(message)

    async def close(self):
        if self.ws is not None and not self.ws.closed:
            await self.ws.close()
"""


async def test_sdk_style_client_over_wss() -> None:
    program = load(SDK)
    async with Emulator(EmulatorConfig(min_heartbeat=0.1, tick_interval=0.01, tls=True)) as emu:
        assert emu.url.startswith("wss://")
        client = program["DeribitClient"](emu.url, ssl=emu.client_ssl_context)
        await client.connect()
        await connections_of(emu, 1)
        sender = emu.faults.send_test_requests(count=20, rate_hz=200, deadline=1.0)
        results = []
        for _ in range(10):
            results.append(await client.call("public/get_time"))
            results.append(await client.call("public/test"))
        await client.call("public/subscribe", {"channels": ["ticker.BTC-PERPETUAL.100ms"]})
        await asyncio.sleep(0.1)
        await client.call("public/get_time")
        await sender
        for _ in range(int(TIMEOUT / 0.005)):
            if client.ws.heartbeat_stats.test_requests == 20:
                break
            await asyncio.sleep(0.005)
        assert client.ws.heartbeat_stats.test_requests == 20
        await client.close()
        assert client.ws.closed
    assert all(isinstance(r, (int, dict)) for r in results)
    assert heartbeat_traffic(client.notifications) == [] and client.notifications
