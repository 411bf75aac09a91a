"""drbfast: FastListener answers test_requests in C; notifications go to the hook,
parsed with simdjson (lazy field access for ``few``, full decode for ``full``, a parse
for ``parse``). ``--lanes off`` runs the listener as one FIFO (every message delivered,
as the peers do); the default is the lanes (priority, conflation, book reset, byte
bound), which is what ``drbfast.connect`` uses."""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

import picows
import simdjson

from drbfast import FastListener

from .common import READY, Deadline, busy, run, ssl_context, url


async def main(args: argparse.Namespace) -> tuple[int, dict[str, Any]]:
    parser = simdjson.Parser()
    count = 0
    cost = args.cost_us / 1e6
    deadline = Deadline(args.deadline_s)
    loop = asyncio.get_running_loop()
    done = loop.create_future()
    holder: list[FastListener] = []

    def finish(_: object = None) -> None:
        if not done.done():
            done.set_result(None)

    def on_message(payload: bytes, binary: bool, lane: int, channel: str, rx_ns: int) -> None:
        nonlocal count
        if payload.startswith(b'{"jsonrpc":"2.0","method":"bench_end"'):
            holder[0].send(b"done")
            return
        if deadline.expired():
            holder[0].close()
            finish()
            return
        count += 1
        if args.decode == "few":
            # lazy proxies, as drbfast.connect(lazy=True) hands them to a callback
            doc = parser.parse(payload)
            data = doc["params"]["data"]
            data["change_id"], data["timestamp"], data["bids"][0][1]
            del data, doc
        elif args.decode == "full":
            parser.parse(payload, True)
        else:
            doc = parser.parse(payload)
            del doc  # the parser reuses its buffer once the document is released
        busy(cost)

    def factory() -> FastListener:
        holder.append(FastListener(on_message, None, finish, lanes=args.lanes == "on"))
        return holder[0]

    await picows.ws_connect(factory, url(args), ssl_context=ssl_context(args))
    holder[0].send(READY.encode())
    if args.deadline_s:
        loop.call_later(args.deadline_s, finish)
    await done
    s = holder[0].stats
    return count, {"delivered": s.delivered, "conflated": s.conflated, "dropped": s.dropped,
                   "book_resets": s.book_resets, "book_dropped": s.book_dropped,
                   "queued_bytes_peak": s.queued_bytes_peak, "delay_p50_us": s.delay_p50_ns / 1000,
                   "delay_p99_us": s.delay_p99_ns / 1000, "delay_max_us": s.delay_max_ns / 1000,
                   "messages": s.messages}


if __name__ == "__main__":
    run(main)
