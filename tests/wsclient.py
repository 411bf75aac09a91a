"""A small client on the independent `websockets` stack, so the emulator is not
checked only by drbfast's own client."""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from typing import Any

import websockets

from drbfast.emulator import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, sign

TIMEOUT = 10.0


class WsClient:
    def __init__(self, ws: websockets.ClientConnection) -> None:
        self.ws = ws
        self.ids = itertools.count(1)
        self.notifications: list[dict[str, Any]] = []
        self.other: list[Any] = []
        self.answer_test_requests = False
        self.heartbeats: list[str] = []

    @classmethod
    async def open(cls, url: str, **kwargs: Any) -> WsClient:
        return cls(await asyncio.wait_for(websockets.connect(url, **kwargs), TIMEOUT))

    async def close(self) -> None:
        await asyncio.wait_for(self.ws.close(), TIMEOUT)

    async def send(self, method: str, params: dict[str, Any] | None = None, req_id: Any = None) -> Any:
        if req_id is None:
            req_id = next(self.ids)
        await self.ws.send(json.dumps({"jsonrpc": "2.0", "id": req_id, "method": method, "params": params or {}}))
        return req_id

    async def next_message(self, timeout: float = TIMEOUT) -> Any:
        """The next message, answering test_requests on the way if asked to."""
        raw = await asyncio.wait_for(self.ws.recv(), timeout)
        msg = json.loads(raw)
        if isinstance(msg, dict) and msg.get("method") == "heartbeat":
            self.heartbeats.append(msg["params"]["type"])
            if self.answer_test_requests and msg["params"]["type"] == "test_request":
                await self.send("public/test")
        return msg

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        """Send a request and return its whole response (result or error)."""
        req_id = await self.send(method, params)
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            msg = await self.next_message()
            if isinstance(msg, dict) and msg.get("id") == req_id:
                return msg
            if isinstance(msg, dict) and msg.get("method") == "subscription":
                self.notifications.append(msg["params"])
            else:
                self.other.append(msg)
        raise AssertionError(f"no response to {method}")

    async def result(self, method: str, **params: Any) -> Any:
        msg = await self.call(method, **params)
        assert "error" not in msg, msg
        return msg["result"]

    async def auth(self, grant: str = "client_signature", secret: str = DEMO_CLIENT_SECRET) -> dict[str, Any]:
        if grant == "client_signature":
            ts = int(time.time() * 1000)
            return await self.call("public/auth", grant_type="client_signature", client_id=DEMO_CLIENT_ID,
                                   timestamp=ts, nonce="n0nce", data="", signature=sign(secret, ts, "n0nce", ""))
        return await self.call("public/auth", grant_type="client_credentials", client_id=DEMO_CLIENT_ID, client_secret=secret)

    async def collect(self, n: int, channel: str | None = None) -> list[dict[str, Any]]:
        """Wait for n more notifications (of ``channel`` if given)."""
        got: list[dict[str, Any]] = []
        deadline = time.monotonic() + TIMEOUT
        while len(got) < n and time.monotonic() < deadline:
            msg = await self.next_message()
            if isinstance(msg, dict) and msg.get("method") == "subscription":
                self.notifications.append(msg["params"])
                if channel is None or msg["params"]["channel"] == channel:
                    got.append(msg["params"])
        assert len(got) == n, f"only {len(got)} of {n} notifications"
        return got
