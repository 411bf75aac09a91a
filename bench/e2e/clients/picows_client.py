"""picows with a plain Python listener, decoding with json, orjson or simdjson
(``--codec``). simdjson does the lazy work drbfast's ``few`` does: ``Parser().parse``,
then only the fields read are taken from the proxy (``full``: the whole document;
otherwise a parse)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

import picows
from picows import WSMsgType

from .common import READY, PUBLIC_TEST, Deadline, busy, few_fields, run, ssl_context, url

CODEC = sys.argv.pop(sys.argv.index("--codec") + 1) if "--codec" in sys.argv else "json"
if "--codec" in sys.argv:
    sys.argv.remove("--codec")
if CODEC == "simdjson":
    import simdjson

    _parser = simdjson.Parser()

    def loads(raw: bytes) -> Any:
        # A proxy over the parser's buffer: released (del) before the next parse.
        return _parser.parse(raw)
else:
    loads = __import__(CODEC).loads


class Listener(picows.WSListener):  # type: ignore[misc]
    def __init__(self, few: bool, cost: float, deadline: Deadline, full: bool = False) -> None:
        self.few = few
        self.full = full
        self.cost = cost
        self.deadline = deadline
        self.count = 0
        self.ids = 0
        self.done = asyncio.get_running_loop().create_future()

    def on_ws_frame(self, transport: picows.WSTransport, frame: picows.WSFrame) -> None:
        if frame.msg_type == WSMsgType.CLOSE:
            transport.send_close(frame.get_close_code())
            transport.disconnect()
            return
        if frame.msg_type != WSMsgType.TEXT:
            return
        if self.deadline.expired():
            transport.disconnect()
            return
        msg = loads(frame.get_payload_as_bytes())
        if self.full:
            msg = msg.as_dict()  # simdjson: the whole document, as json/orjson give it
        method = msg.get("method")
        if method == "heartbeat":
            if msg["params"]["type"] == "test_request":
                self.ids += 1
                transport.send(WSMsgType.TEXT, (PUBLIC_TEST % self.ids).encode())
        elif method == "bench_end":
            transport.send(WSMsgType.TEXT, b"done")
        else:
            self.count += 1
            if self.few:
                few_fields(msg)
            busy(self.cost)
        del msg  # simdjson: the parser reuses its buffer once the document is released

    def on_ws_disconnected(self, transport: picows.WSTransport) -> None:
        if not self.done.done():
            self.done.set_result(None)


async def main(args: argparse.Namespace) -> int:
    full = CODEC == "simdjson" and args.decode == "full"
    transport, listener = await picows.ws_connect(lambda: Listener(args.decode == "few", args.cost_us / 1e6, Deadline(args.deadline_s), full),
                                                  url(args), ssl_context=ssl_context(args))
    transport.send(WSMsgType.TEXT, READY.encode())
    await transport.wait_disconnected()
    return listener.count


if __name__ == "__main__":
    run(main)
