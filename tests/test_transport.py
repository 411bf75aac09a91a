"""drbfast.transport: the one connect path (the only caller of picows.ws_connect in
drbfast), its handshake options, and how every failure becomes a ConnectError with the
cause chained. Real sockets on 127.0.0.1."""

from __future__ import annotations

import ast
import asyncio
import pathlib
import re
from collections.abc import AsyncIterator
from typing import Any

import picows
import pytest
from picows import WSListener, ws_create_server

import drbfast
from drbfast import FastListener
from drbfast.errors import ConnectError, ConnectTimeout
from drbfast.transport import handshake_headers, open_listener

from .conftest import TIMEOUT

PACKAGE = pathlib.Path(drbfast.__file__).parent


def _calls_ws_connect(tree: ast.AST) -> list[int]:
    """Lines that name ``ws_connect`` (an attribute, an imported or plain name, a
    string given to getattr): any way of reaching picows' connect."""
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr == "ws_connect":
            lines.append(node.lineno)
        elif isinstance(node, ast.Name) and node.id == "ws_connect":
            lines.append(node.lineno)
        elif isinstance(node, ast.ImportFrom) and any(a.name == "ws_connect" for a in node.names):
            lines.append(node.lineno)
        elif isinstance(node, ast.Constant) and node.value == "ws_connect":
            lines.append(node.lineno)
    return lines


def test_transport_is_the_only_caller_of_ws_connect() -> None:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        lines = _calls_ws_connect(ast.parse(path.read_text(), str(path)))
        if lines:
            found[str(path.relative_to(PACKAGE))] = lines
    assert set(found) == {"transport.py"}, f"ws_connect named outside transport.py: {found}"
    # ...and the compiled sources do not call it either.
    for path in sorted(PACKAGE.rglob("*.pyx")):
        assert not re.search(r"\bws_connect\b", path.read_text()), path


def test_the_check_sees_every_spelling() -> None:
    tree = ast.parse("import picows\nfrom picows import ws_connect\npicows.ws_connect\ngetattr(picows, 'ws_connect')\n")
    assert sorted(_calls_ws_connect(tree)) == [2, 3, 4]
    assert _calls_ws_connect(ast.parse("def on_ws_connected(self): pass\n")) == []


def test_handshake_headers() -> None:
    assert handshake_headers(None) == []
    assert handshake_headers([("X-A", "1")], user_agent="ua/1", subprotocols=["a", "b"]) == [
        ("X-A", "1"), ("User-Agent", "ua/1"), ("Sec-WebSocket-Protocol", "a, b")]
    # The caller's own User-Agent wins, whatever its case.
    assert handshake_headers([("user-agent", "mine")], user_agent="ua/1") == [("user-agent", "mine")]


class _Echo(WSListener):  # type: ignore[misc]
    pass


@pytest.fixture
async def recording_server() -> AsyncIterator[tuple[str, list[Any]]]:
    requests: list[Any] = []

    def factory(request: Any) -> Any:
        requests.append(request)
        return _Echo()

    server = await ws_create_server(factory, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"ws://127.0.0.1:{port}/", requests
    finally:
        server.close()
        await asyncio.wait_for(server.wait_closed(), TIMEOUT)


async def test_open_listener_sends_headers_user_agent_and_subprotocols(recording_server: tuple[str, list[Any]]) -> None:
    url, requests = recording_server
    transport, listener = await open_listener(
        lambda: FastListener(None), url, ssl=None, timeout=TIMEOUT, listener_type=FastListener,
        extra_headers=[("X-Token", "t")], user_agent="drbfast-test", subprotocols=["one", "two"])
    try:
        assert isinstance(listener, FastListener)
        headers = requests[0].headers
        assert headers["X-Token"] == "t" and headers["User-Agent"] == "drbfast-test"
        assert headers["Sec-WebSocket-Protocol"] == "one, two"
    finally:
        transport.disconnect()
        await asyncio.wait_for(transport.wait_disconnected(), TIMEOUT)


async def test_open_listener_without_a_deadline(recording_server: tuple[str, list[Any]]) -> None:
    url, _ = recording_server
    transport, listener = await asyncio.wait_for(open_listener(
        lambda: FastListener(None), url, ssl=None, timeout=None, listener_type=FastListener), TIMEOUT)
    transport.disconnect()
    await asyncio.wait_for(transport.wait_disconnected(), TIMEOUT)


async def _raw_server(answer: bytes | None) -> tuple[asyncio.Server, str]:
    """A TCP server that reads the upgrade request and answers ``answer`` then hangs
    up (``None``: hangs up at once without answering; ``b""``: never answers)."""
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        if answer == b"":
            await asyncio.sleep(TIMEOUT)
        if answer:
            writer.write(answer)
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}/"


async def _open(url: str, **kwargs: Any) -> Any:
    options: dict[str, Any] = {"timeout": TIMEOUT}
    options.update(kwargs)
    return await asyncio.wait_for(open_listener(lambda: FastListener(None), url, ssl=None,
                                                listener_type=FastListener, **options), TIMEOUT + 1)


async def test_every_failure_is_a_connect_error_with_its_cause() -> None:
    # Refused: the OSError is the cause.
    with pytest.raises(ConnectError) as refused:
        await _open("ws://127.0.0.1:9/")
    assert isinstance(refused.value.__cause__, OSError)
    # Hung up before answering: EOFError is the cause (the drop-in says InvalidMessage).
    server, url = await _raw_server(None)
    async with server:
        with pytest.raises(ConnectError) as eof:
            await _open(url)
    assert isinstance(eof.value.__cause__, EOFError), repr(eof.value.__cause__)
    # An HTTP status other than 101, with max_redirects=0 a redirect too: the status and the response.
    server, url = await _raw_server(b"HTTP/1.1 302 Found\r\nLocation: /elsewhere\r\nContent-Length: 0\r\n\r\n")
    async with server:
        with pytest.raises(ConnectError) as status:
            await _open(url, max_redirects=0)
    assert status.value.status == 302 and isinstance(status.value.__cause__, picows.WSInvalidStatusError)
    assert status.value.__cause__.response.headers["Location"] == "/elsewhere"
    # A deadline: ConnectTimeout.
    server, url = await _raw_server(b"")
    async with server:
        with pytest.raises(ConnectTimeout):
            await _open(url, timeout=0.2)
