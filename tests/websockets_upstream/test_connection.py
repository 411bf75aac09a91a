"""The client-side connection behaviours of websockets' tests/asyncio/test_connection.py,
run against drbfast.websockets with websockets' sans-I/O ``ServerProtocol`` as the far
end (remote.py). Test names and expected values are upstream's (LICENSE.websockets).

Not ported, with the reason:
* server-side variants (``ServerConnectionTests``): drbfast.websockets is a client;
* ``test_recv_streaming_fragmented_*`` and ``*_cancellation_while_receiving``: the
  compiled listener reassembles fragments, so ``recv_streaming`` yields a message
  once, whole, and a half-received message is not visible to ``recv``;
* ``test_ping`` (random payload), ``test_acknowledge_ping_non_matching_pong``,
  ``test_acknowledge_previous_canceled_ping``: picows takes any PONG as the answer to
  the PING in flight, whatever its payload (the payload never reaches Python);
* ``test_keepalive_reports_errors``, ``test_max_queue*``, ``test_write_limit*``,
  ``test_close_timeout`` (parameter): they inspect websockets' internals (the
  queue and write-buffer bounds are tested by behaviour in test_websockets*.py);
* ``test_send_while_send_*blocked``, ``test_writing_in_*_fails``,
  ``test_unexpected_failure_*``: they patch websockets' internals.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from websockets.frames import Close, Frame, Opcode

from drbfast.websockets import ClientConnection, State, connect
from drbfast.websockets.exceptions import ConcurrencyError, ConnectionClosedError, ConnectionClosedOK

from .remote import Remote
from .support import MS


@pytest.fixture
async def pair() -> AsyncIterator[tuple[ClientConnection, Remote]]:
    async with Remote() as remote:
        connection = await connect(remote.url, ping_interval=None, close_timeout=20 * MS)
        await asyncio.wait_for(remote.connected.wait(), 5)
        yield connection, remote
        await connection.close()


async def settle() -> None:
    await asyncio.sleep(MS)


async def frames_after(remote: Remote, count: int) -> list[Frame]:
    return list(await remote.wait_frames(count))


async def alist(items: AsyncIterator[Any]) -> list[Any]:
    return [item async for item in items]


CLOSE_1000 = Frame(Opcode.CLOSE, Close(1000, "").serialize())


# __aenter__ / __aexit__

async def test_aenter(pair: tuple[ClientConnection, Remote]) -> None:
    """__aenter__ returns the connection itself."""
    connection, _ = pair
    async with connection as entered:
        assert entered is connection


async def test_aexit(pair: tuple[ClientConnection, Remote]) -> None:
    """__aexit__ closes the connection with code 1000."""
    connection, remote = pair
    async with connection:
        await settle()
        assert remote.frames == []
    assert await frames_after(remote, 1) == [CLOSE_1000]


async def test_exit_with_exception(pair: tuple[ClientConnection, Remote]) -> None:
    """__exit__ with an exception closes the connection with code 1011."""
    connection, remote = pair
    with pytest.raises(RuntimeError):
        async with connection:
            raise RuntimeError
    assert await frames_after(remote, 1) == [Frame(Opcode.CLOSE, b"\x03\xf3")]


# __aiter__

async def test_aiter_text(pair: tuple[ClientConnection, Remote]) -> None:
    """__aiter__ yields text messages."""
    connection, remote = pair
    iterator = connection.__aiter__()
    remote.send("send_text", "😀".encode())
    assert await iterator.__anext__() == "😀"
    remote.send("send_text", "😀".encode())
    assert await iterator.__anext__() == "😀"


async def test_aiter_binary(pair: tuple[ClientConnection, Remote]) -> None:
    """__aiter__ yields binary messages."""
    connection, remote = pair
    iterator = connection.__aiter__()
    remote.send("send_binary", b"\x01\x02\xfe\xff")
    assert await iterator.__anext__() == b"\x01\x02\xfe\xff"
    remote.send("send_binary", b"\x01\x02\xfe\xff")
    assert await iterator.__anext__() == b"\x01\x02\xfe\xff"


async def test_aiter_mixed(pair: tuple[ClientConnection, Remote]) -> None:
    """__aiter__ yields a mix of text and binary messages."""
    connection, remote = pair
    iterator = connection.__aiter__()
    remote.send("send_text", "😀".encode())
    assert await iterator.__anext__() == "😀"
    remote.send("send_binary", b"\x01\x02\xfe\xff")
    assert await iterator.__anext__() == b"\x01\x02\xfe\xff"


async def test_aiter_connection_closed_ok(pair: tuple[ClientConnection, Remote]) -> None:
    """__aiter__ terminates after a normal closure."""
    connection, remote = pair
    iterator = connection.__aiter__()
    remote.send("send_close", 1000)
    with pytest.raises(StopAsyncIteration):
        await iterator.__anext__()


async def test_aiter_connection_closed_error(pair: tuple[ClientConnection, Remote]) -> None:
    """__aiter__ raises ConnnectionClosedError after an error."""
    connection, remote = pair
    iterator = connection.__aiter__()
    remote.send("send_close", 1011)
    with pytest.raises(ConnectionClosedError):
        await iterator.__anext__()


# recv

async def test_recv_text(pair: tuple[ClientConnection, Remote]) -> None:
    """recv receives a text message."""
    connection, remote = pair
    remote.send("send_text", "😀".encode())
    assert await connection.recv() == "😀"


async def test_recv_binary(pair: tuple[ClientConnection, Remote]) -> None:
    """recv receives a binary message."""
    connection, remote = pair
    remote.send("send_binary", b"\x01\x02\xfe\xff")
    assert await connection.recv() == b"\x01\x02\xfe\xff"


async def test_recv_fragmented_text(pair: tuple[ClientConnection, Remote]) -> None:
    """recv receives a fragmented text message."""
    connection, remote = pair
    remote.send("send_text", "😀".encode(), fin=False)
    remote.send("send_continuation", "😀".encode(), fin=True)
    assert await connection.recv() == "😀😀"


async def test_recv_fragmented_binary(pair: tuple[ClientConnection, Remote]) -> None:
    """recv receives a fragmented binary message."""
    connection, remote = pair
    remote.send("send_binary", b"\x01\x02", fin=False)
    remote.send("send_continuation", b"\xfe\xff", fin=True)
    assert await connection.recv() == b"\x01\x02\xfe\xff"


async def test_recv_connection_closed_ok(pair: tuple[ClientConnection, Remote]) -> None:
    """recv raises ConnectionClosedOK after a normal closure."""
    connection, remote = pair
    remote.send("send_close", 1000)
    with pytest.raises(ConnectionClosedOK):
        await connection.recv()


async def test_recv_connection_closed_error(pair: tuple[ClientConnection, Remote]) -> None:
    """recv raises ConnectionClosedError after an error."""
    connection, remote = pair
    remote.send("send_close", 1011)
    with pytest.raises(ConnectionClosedError):
        await connection.recv()


async def test_recv_during_recv(pair: tuple[ClientConnection, Remote]) -> None:
    """recv raises RuntimeError when called concurrently with itself."""
    connection, _ = pair
    task = asyncio.create_task(connection.recv())
    await asyncio.sleep(0)
    try:
        with pytest.raises(RuntimeError) as raised:
            await connection.recv()
        assert isinstance(raised.value, ConcurrencyError)
        assert str(raised.value) == ("cannot call recv while another coroutine "
                                     "is already running recv or recv_streaming")
    finally:
        task.cancel()


async def test_recv_during_recv_streaming(pair: tuple[ClientConnection, Remote]) -> None:
    """recv raises RuntimeError when called concurrently with recv_streaming."""
    connection, _ = pair
    task = asyncio.create_task(alist(connection.recv_streaming()))
    await asyncio.sleep(0)
    try:
        with pytest.raises(RuntimeError) as raised:
            await connection.recv()
        assert str(raised.value) == ("cannot call recv while another coroutine "
                                     "is already running recv or recv_streaming")
    finally:
        task.cancel()


async def test_recv_cancellation_before_receiving(pair: tuple[ClientConnection, Remote]) -> None:
    """recv can be cancelled before receiving a frame."""
    connection, remote = pair
    task = asyncio.create_task(connection.recv())
    await asyncio.sleep(0)
    task.cancel()
    await asyncio.sleep(0)
    remote.send("send_text", "😀".encode())
    assert await connection.recv() == "😀"


# recv_streaming

async def test_recv_streaming_text(pair: tuple[ClientConnection, Remote]) -> None:
    """recv_streaming receives a text message."""
    connection, remote = pair
    remote.send("send_text", "😀".encode())
    assert await alist(connection.recv_streaming()) == ["😀"]


async def test_recv_streaming_binary(pair: tuple[ClientConnection, Remote]) -> None:
    """recv_streaming receives a binary message."""
    connection, remote = pair
    remote.send("send_binary", b"\x01\x02\xfe\xff")
    assert await alist(connection.recv_streaming()) == [b"\x01\x02\xfe\xff"]


async def test_recv_streaming_connection_closed_ok(pair: tuple[ClientConnection, Remote]) -> None:
    """recv_streaming raises ConnectionClosedOK after a normal closure."""
    connection, remote = pair
    remote.send("send_close", 1000)
    with pytest.raises(ConnectionClosedOK):
        async for _ in connection.recv_streaming():
            pytest.fail("did not raise")


async def test_recv_streaming_connection_closed_error(pair: tuple[ClientConnection, Remote]) -> None:
    """recv_streaming raises ConnectionClosedError after an error."""
    connection, remote = pair
    remote.send("send_close", 1011)
    with pytest.raises(ConnectionClosedError):
        async for _ in connection.recv_streaming():
            pytest.fail("did not raise")


async def test_recv_streaming_during_recv(pair: tuple[ClientConnection, Remote]) -> None:
    """recv_streaming raises RuntimeError when called concurrently with recv."""
    connection, _ = pair
    task = asyncio.create_task(connection.recv())
    await asyncio.sleep(0)
    try:
        with pytest.raises(RuntimeError) as raised:
            async for _ in connection.recv_streaming():
                pytest.fail("did not raise")
        assert str(raised.value) == ("cannot call recv_streaming while another coroutine "
                                     "is already running recv or recv_streaming")
    finally:
        task.cancel()


async def test_recv_streaming_cancellation_before_receiving(pair: tuple[ClientConnection, Remote]) -> None:
    """recv_streaming can be cancelled before receiving a frame."""
    connection, remote = pair
    task = asyncio.create_task(alist(connection.recv_streaming()))
    await asyncio.sleep(0)
    task.cancel()
    await asyncio.sleep(0)
    remote.send("send_text", "😀".encode(), fin=False)
    remote.send("send_continuation", "😀".encode(), fin=True)
    assert await alist(connection.recv_streaming()) == ["😀😀"]  # upstream: per fragment


# send

async def test_send_text(pair: tuple[ClientConnection, Remote]) -> None:
    """send sends a text message."""
    connection, remote = pair
    await connection.send("😀")
    await remote.wait_frames(1)
    assert remote.messages == ["😀"]


async def test_send_binary(pair: tuple[ClientConnection, Remote]) -> None:
    """send sends a binary message."""
    connection, remote = pair
    await connection.send(b"\x01\x02\xfe\xff")
    await remote.wait_frames(1)
    assert remote.messages == [b"\x01\x02\xfe\xff"]


async def test_send_fragmented_text(pair: tuple[ClientConnection, Remote]) -> None:
    """send sends a fragmented text message."""
    connection, remote = pair
    await connection.send(["😀", "😀"])
    frames = await frames_after(remote, 2)
    assert [bytes(f.data).decode() for f in frames] == ["😀", "😀"]  # websockets adds an empty 3rd
    assert remote.messages == ["😀😀"]


async def test_send_fragmented_binary(pair: tuple[ClientConnection, Remote]) -> None:
    """send sends a fragmented binary message."""
    connection, remote = pair
    await connection.send([b"\x01\x02", b"\xfe\xff"])
    frames = await frames_after(remote, 2)
    assert [f.data for f in frames] == [b"\x01\x02", b"\xfe\xff"]
    assert remote.messages == [b"\x01\x02\xfe\xff"]


async def test_send_async_fragmented_text(pair: tuple[ClientConnection, Remote]) -> None:
    """send sends a fragmented text message asynchronously."""
    connection, remote = pair

    async def fragments() -> AsyncIterator[str]:
        yield "😀"
        yield "😀"

    await connection.send(fragments())
    await remote.wait_frames(2)
    assert remote.messages == ["😀😀"]


async def test_send_async_fragmented_binary(pair: tuple[ClientConnection, Remote]) -> None:
    """send sends a fragmented binary message asynchronously."""
    connection, remote = pair

    async def fragments() -> AsyncIterator[bytes]:
        yield b"\x01\x02"
        yield b"\xfe\xff"

    await connection.send(fragments())
    await remote.wait_frames(2)
    assert remote.messages == [b"\x01\x02\xfe\xff"]


async def test_send_connection_closed_ok(pair: tuple[ClientConnection, Remote]) -> None:
    """send raises ConnectionClosedOK after a normal closure."""
    connection, remote = pair
    remote.send("send_close", 1000)
    await connection.wait_closed()
    with pytest.raises(ConnectionClosedOK):
        await connection.send("😀")


async def test_send_connection_closed_error(pair: tuple[ClientConnection, Remote]) -> None:
    """send raises ConnectionClosedError after an error."""
    connection, remote = pair
    remote.send("send_close", 1011)
    await connection.wait_closed()
    with pytest.raises(ConnectionClosedError):
        await connection.send("😀")


async def test_send_empty_iterable(pair: tuple[ClientConnection, Remote]) -> None:
    """send does nothing when called with an empty iterable."""
    connection, remote = pair
    await connection.send([])
    await connection.close()
    assert remote.messages == []


async def test_send_mixed_iterable(pair: tuple[ClientConnection, Remote]) -> None:
    """send raises TypeError when called with an iterable of inconsistent types."""
    connection, _ = pair
    with pytest.raises(TypeError):
        await connection.send(["😀", b"\xfe\xff"])


async def test_send_unsupported_iterable(pair: tuple[ClientConnection, Remote]) -> None:
    """send raises TypeError when called with an iterable of unsupported type."""
    connection, _ = pair
    with pytest.raises(TypeError):
        await connection.send([None])  # type: ignore[list-item]


async def test_send_empty_async_iterable(pair: tuple[ClientConnection, Remote]) -> None:
    """send does nothing when called with an empty async iterable."""
    connection, remote = pair

    async def fragments() -> AsyncIterator[str]:
        return
        yield  # pragma: no cover

    await connection.send(fragments())
    await connection.close()
    assert remote.messages == []


async def test_send_mixed_async_iterable(pair: tuple[ClientConnection, Remote]) -> None:
    """send raises TypeError when called with an iterable of inconsistent types."""
    connection, _ = pair

    async def fragments() -> AsyncIterator[str | bytes]:
        yield "😀"
        yield b"\xfe\xff"

    with pytest.raises(TypeError):
        await connection.send(fragments())


async def test_send_unsupported_async_iterable(pair: tuple[ClientConnection, Remote]) -> None:
    """send raises TypeError when called with an iterable of unsupported type."""
    connection, _ = pair

    async def fragments() -> AsyncIterator[None]:
        yield None

    with pytest.raises(TypeError):
        await connection.send(fragments())  # type: ignore[arg-type]


async def test_send_dict(pair: tuple[ClientConnection, Remote]) -> None:
    """send raises TypeError when called with a dict."""
    connection, _ = pair
    with pytest.raises(TypeError):
        await connection.send({"type": "object"})


async def test_send_unsupported_type(pair: tuple[ClientConnection, Remote]) -> None:
    """send raises TypeError when called with an unsupported type."""
    connection, _ = pair
    with pytest.raises(TypeError):
        await connection.send(None)  # type: ignore[arg-type]


# close

async def test_close(pair: tuple[ClientConnection, Remote]) -> None:
    """close sends a close frame."""
    connection, remote = pair
    await connection.close()
    assert await frames_after(remote, 1) == [CLOSE_1000]


async def test_close_explicit_code_reason(pair: tuple[ClientConnection, Remote]) -> None:
    """close sends a close frame with a given code and reason."""
    connection, remote = pair
    await connection.close(1001, "bye!")
    assert await frames_after(remote, 1) == [Frame(Opcode.CLOSE, b"\x03\xe9bye!")]


async def test_close_waits_for_close_frame(pair: tuple[ClientConnection, Remote]) -> None:
    """close waits for a close frame (then EOF) before returning."""
    connection, _ = pair
    await connection.close()
    with pytest.raises(ConnectionClosedOK) as raised:
        await connection.recv()
    assert str(raised.value) == "sent 1000 (OK); then received 1000 (OK)"
    assert raised.value.__cause__ is None


async def test_close_timeout_waiting_for_close_frame(pair: tuple[ClientConnection, Remote]) -> None:
    """close times out if no close frame is received."""
    connection, remote = pair
    remote.stop_reading()  # the far end stops reading: no close frame comes back
    await asyncio.sleep(MS)
    await connection.close()
    with pytest.raises(ConnectionClosedError) as raised:
        await connection.recv()
    assert str(raised.value) == "sent 1000 (OK); no close frame received"


async def test_close_does_not_wait_for_recv(pair: tuple[ClientConnection, Remote]) -> None:
    """close discards buffered messages."""
    connection, remote = pair
    remote.send("send_text", "😀".encode())
    await settle()
    await connection.close()
    assert await connection.recv() == "😀"  # drbfast: read before the close is kept
    with pytest.raises(ConnectionClosedOK) as raised:
        await connection.recv()
    assert str(raised.value) == "sent 1000 (OK); then received 1000 (OK)"


async def test_close_idempotency(pair: tuple[ClientConnection, Remote]) -> None:
    """close does nothing if the connection is already closed."""
    connection, remote = pair
    await connection.close()
    assert await frames_after(remote, 1) == [CLOSE_1000]
    await connection.close()
    await settle()
    assert remote.frames == [CLOSE_1000]


async def test_close_during_recv(pair: tuple[ClientConnection, Remote]) -> None:
    """close aborts recv when called concurrently with recv."""
    connection, _ = pair
    task = asyncio.create_task(connection.recv())
    await asyncio.sleep(MS)
    await connection.close()
    with pytest.raises(ConnectionClosedOK) as raised:
        await task
    assert str(raised.value) == "sent 1000 (OK); then received 1000 (OK)"


async def test_wait_closed(pair: tuple[ClientConnection, Remote]) -> None:
    """wait_closed waits for the connection to close."""
    connection, _ = pair
    task = asyncio.create_task(connection.wait_closed())
    await asyncio.sleep(0)
    assert not task.done()
    await connection.close()
    await asyncio.sleep(0)
    assert task.done()


# ping, pong

async def test_ping_explicit_text(pair: tuple[ClientConnection, Remote]) -> None:
    """ping sends a ping frame with a payload provided as text."""
    connection, remote = pair
    await connection.ping("ping")
    frames = await frames_after(remote, 1)
    assert frames[0] == Frame(Opcode.PING, b"ping")  # then an empty PING that picows times


async def test_ping_explicit_binary(pair: tuple[ClientConnection, Remote]) -> None:
    """ping sends a ping frame with a payload provided as binary."""
    connection, remote = pair
    await connection.ping(b"ping")
    frames = await frames_after(remote, 1)
    assert frames[0] == Frame(Opcode.PING, b"ping")


async def test_acknowledge_ping(pair: tuple[ClientConnection, Remote]) -> None:
    """ping is acknowledged by a pong with the same payload."""
    connection, remote = pair
    remote.set_answer_pings(False)  # drop automatic response to ping
    pong_waiter = await connection.ping("this")
    await remote.wait_frames(1)
    remote.send("send_pong", b"this")
    latency = await asyncio.wait_for(pong_waiter, 1)
    assert latency > 0 and connection.latency == latency


async def test_acknowledge_canceled_ping(pair: tuple[ClientConnection, Remote]) -> None:
    """ping is acknowledged by a pong with the same payload after being canceled."""
    connection, remote = pair
    remote.set_answer_pings(False)
    pong_waiter = await connection.ping("this")
    pong_waiter.cancel()  # type: ignore[attr-defined]
    remote.send("send_pong", b"this")
    with pytest.raises(asyncio.CancelledError):
        await pong_waiter


async def test_acknowledge_previous_ping(pair: tuple[ClientConnection, Remote]) -> None:
    """ping is acknowledged by a pong for a later ping."""
    connection, remote = pair
    remote.set_answer_pings(False)
    pong_waiter = await connection.ping("this")
    await connection.ping("that")
    await remote.wait_frames(1)
    remote.send("send_pong", b"that")
    await asyncio.wait_for(pong_waiter, 1)


async def test_terminate_ping_on_close(pair: tuple[ClientConnection, Remote]) -> None:
    """ping is done with an exception when the connection is closed."""
    connection, remote = pair
    remote.set_answer_pings(False)
    pong_waiter = await connection.ping("this")
    await connection.close()
    with pytest.raises(ConnectionClosedOK):
        await pong_waiter


async def test_ping_duplicate_payload(pair: tuple[ClientConnection, Remote]) -> None:
    """ping rejects the same payload until receiving the pong."""
    connection, remote = pair
    remote.set_answer_pings(False)
    pong_waiter = await connection.ping("idem")
    with pytest.raises(ConcurrencyError) as raised:
        await connection.ping("idem")
    assert str(raised.value) == "already waiting for a pong with the same data"
    await remote.wait_frames(1)
    remote.send("send_pong", b"idem")
    await asyncio.wait_for(pong_waiter, 1)
    await connection.ping("idem")  # doesn't raise an exception


async def test_ping_unsupported_type(pair: tuple[ClientConnection, Remote]) -> None:
    """ping raises TypeError when called with an unsupported type."""
    connection, _ = pair
    with pytest.raises(TypeError):
        await connection.ping([])  # type: ignore[arg-type]


async def test_pong(pair: tuple[ClientConnection, Remote]) -> None:
    """pong sends a pong frame."""
    connection, remote = pair
    await connection.pong()
    assert await frames_after(remote, 1) == [Frame(Opcode.PONG, b"")]


async def test_pong_explicit_text(pair: tuple[ClientConnection, Remote]) -> None:
    """pong sends a pong frame with a payload provided as text."""
    connection, remote = pair
    await connection.pong("pong")
    assert await frames_after(remote, 1) == [Frame(Opcode.PONG, b"pong")]


async def test_pong_explicit_binary(pair: tuple[ClientConnection, Remote]) -> None:
    """pong sends a pong frame with a payload provided as binary."""
    connection, remote = pair
    await connection.pong(b"pong")
    assert await frames_after(remote, 1) == [Frame(Opcode.PONG, b"pong")]


async def test_pong_unsupported_type(pair: tuple[ClientConnection, Remote]) -> None:
    """pong raises TypeError when called with an unsupported type."""
    connection, _ = pair
    with pytest.raises(TypeError):
        await connection.pong([])  # type: ignore[arg-type]


# keepalive (newer upstream versions)

async def test_keepalive() -> None:
    """keepalive sends pings at ping_interval and measures latency."""
    async with Remote() as remote:
        async with connect(remote.url, ping_interval=2 * MS) as connection:
            assert connection.latency == 0
            await asyncio.sleep(20 * MS)
            assert connection.latency > 0
            assert any(f.opcode is Opcode.PING for f in remote.frames)


async def test_keepalive_times_out() -> None:
    """keepalive closes the connection if ping_timeout elapses."""
    async with Remote() as remote:
        remote.set_answer_pings(False)
        async with connect(remote.url, ping_interval=4 * MS, ping_timeout=2 * MS) as connection:
            with pytest.raises(ConnectionClosedError) as raised:
                await asyncio.wait_for(connection.recv(), 5)
            assert connection.state.name == "CLOSED"
            assert raised.value.sent is not None
            assert (raised.value.sent.code, raised.value.sent.reason) == (1011, "keepalive ping timeout")


async def test_keepalive_ignores_timeout() -> None:
    """keepalive ignores timeouts if ping_timeout isn't set."""
    async with Remote() as remote:
        remote.set_answer_pings(False)
        async with connect(remote.url, ping_interval=4 * MS, ping_timeout=None) as connection:
            await asyncio.sleep(20 * MS)
            assert connection.state.name == "OPEN"
            assert sum(f.opcode is Opcode.PING for f in remote.frames) == 1  # one at a time


async def test_keepalive_terminates_while_sleeping() -> None:
    """keepalive task terminates while waiting to send a ping."""
    async with Remote() as remote:
        connection = await connect(remote.url, ping_interval=30 * MS)
        await asyncio.sleep(MS)
        task = connection._keepalive_task
        assert task is not None and not task.done()
        await connection.close()
        await asyncio.sleep(0)
        assert task.done()


async def test_keepalive_terminates_while_waiting_for_pong() -> None:
    """keepalive task terminates while waiting to receive a pong."""
    async with Remote() as remote:
        remote.set_answer_pings(False)
        connection = await connect(remote.url, ping_interval=MS, ping_timeout=40 * MS)
        await asyncio.sleep(5 * MS)
        task = connection._keepalive_task
        assert task is not None and not task.done()
        await connection.close()
        await asyncio.sleep(0)
        assert task.done()


async def test_keepalive_interval_below_timeout() -> None:
    """ping_interval shorter than ping_timeout is allowed (Deribit samples use 10/60)."""
    async with Remote() as remote:
        async with connect(remote.url, ping_interval=2 * MS, ping_timeout=60) as connection:
            await asyncio.sleep(20 * MS)
            assert connection.latency > 0


# attributes

async def test_id(pair: tuple[ClientConnection, Remote]) -> None:
    """Connection has an id attribute."""
    connection, _ = pair
    assert isinstance(connection.id, uuid.UUID)


async def test_local_address(pair: tuple[ClientConnection, Remote]) -> None:
    """Connection provides a local_address attribute."""
    connection, _ = pair
    assert connection.local_address[0] == "127.0.0.1"


async def test_remote_address(pair: tuple[ClientConnection, Remote]) -> None:
    """Connection provides a remote_address attribute."""
    connection, remote = pair
    assert connection.remote_address == remote.server.sockets[0].getsockname()


async def test_state(pair: tuple[ClientConnection, Remote]) -> None:
    """Connection has a state attribute."""
    connection, _ = pair
    assert connection.state is State.OPEN


async def test_close_code(pair: tuple[ClientConnection, Remote]) -> None:
    """Connection has a close_code attribute."""
    connection, _ = pair
    assert connection.close_code is None


async def test_close_reason(pair: tuple[ClientConnection, Remote]) -> None:
    """Connection has a close_reason attribute."""
    connection, _ = pair
    assert connection.close_reason is None


async def test_subprotocol(pair: tuple[ClientConnection, Remote]) -> None:
    """Connection has a subprotocol attribute."""
    connection, _ = pair
    assert connection.subprotocol is None
