"""Orders over picows with a plain Python listener and orjson (or json: ``--codec``):
requests encoded from a dict, replies matched by id in ``on_ws_frame``."""

from __future__ import annotations

import argparse
from typing import Any

import picows
from picows import WSMsgType

from .common import READY, Deadline, run, ssl_context, url
from .orders_common import Inbox, Timings, drive, order_args, request

O = order_args()
codec: Any = __import__(O.codec)


def dumps(obj: Any) -> bytes:
    out = codec.dumps(obj)
    return out if isinstance(out, bytes) else out.encode()


class Listener(picows.WSListener):
    def __init__(self, inbox: Inbox, deadline: Deadline) -> None:
        self.inbox = inbox
        self.deadline = deadline

    def on_ws_frame(self, transport: picows.WSTransport, frame: picows.WSFrame) -> None:
        if frame.msg_type == WSMsgType.CLOSE:
            transport.send_close(frame.get_close_code())
            transport.disconnect()
            return
        if frame.msg_type != WSMsgType.TEXT or self.deadline.expired():
            return
        answer = self.inbox.handle(codec.loads(frame.get_payload_as_bytes()))
        if answer is not None:
            transport.send(WSMsgType.TEXT, answer.encode())


async def main(args: argparse.Namespace) -> tuple[int, dict[str, Any]]:
    timings = Timings()
    inbox = Inbox(timings, {}, args.cost_us / 1e6)
    deadline = Deadline(O.seconds + O.grace_s + 1 if O.seconds else 0)
    transport, _ = await picows.ws_connect(lambda: Listener(inbox, deadline), url(args), ssl_context=ssl_context(args))
    transport.send(WSMsgType.TEXT, READY.encode())

    def send(req_id: int) -> None:
        transport.send(WSMsgType.TEXT, dumps(request(req_id, f"pw-{req_id}")))

    await drive(O, timings, send, inbox.waiters)
    transport.send(WSMsgType.TEXT, b"done")
    figures = timings.figures()
    transport.disconnect()
    return inbox.count, figures


if __name__ == "__main__":
    run(main)
