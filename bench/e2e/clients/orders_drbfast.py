"""Orders with drbfast: ``drbfast.connect`` with credentials (the bench server accepts
any), then ``client.place(..., on_ack=...)`` (``--style place``: fire and forget, timed
to the ack callback) or ``await client.buy(...)`` (``--style await``: timed to the
await's return). The matching-engine credit pool is set far above the bench's rate so
orders are never spaced (its bucket is still charged). Under the flood the feed's
channels are subscribed with a callback (default options: the listener's lanes)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

import drbfast
from drbfast import CreditPools, Credits, OrderHandle

from .common import busy, run, ssl_context, url
from .orders_common import AMOUNT, INSTRUMENT, PRICE, Timings, drive, order_args

O = order_args()


async def main(args: argparse.Namespace) -> tuple[int, dict[str, Any]]:
    timings = Timings()
    waiters: dict[int, asyncio.Future[None]] = {}
    by_label: dict[str, int] = {}
    errors = 0
    count = 0
    cost = args.cost_us / 1e6
    credits = CreditPools(matching=Credits.rate(1_000_000, 1_000_000))
    client = await drbfast.connect(url(args), client_id="bench", client_secret="bench-secret", ssl=ssl_context(args),
                                   credits=credits)
    try:
        if O.channels:
            def on_data(channel: str, data: Any) -> None:
                nonlocal count
                count += 1
                busy(cost)

            await client.subscribe(*O.channels.split(","), callback=on_data)
        await client.call("public/get_time")  # the server's mode starts here

        def on_ack(handle: OrderHandle) -> None:
            nonlocal errors
            req_id = by_label.pop(handle.label)
            timings.acked(req_id)
            if handle.order is None:
                errors += 1
                if errors < 3:
                    print("order error:", repr(handle._result.exception()), file=sys.stderr)
            waiters.pop(req_id).set_result(None)

        def place(req_id: int) -> None:
            by_label[client.place("buy", INSTRUMENT, AMOUNT, price=PRICE, on_ack=on_ack).label] = req_id

        async def buy(req_id: int) -> None:
            nonlocal errors
            try:
                await client.buy(INSTRUMENT, AMOUNT, price=PRICE)
            except drbfast.DrbfastError as exc:
                errors += 1
                if errors < 3:
                    print("order error:", repr(exc), file=sys.stderr)
            timings.acked(req_id)
            waiters.pop(req_id).set_result(None)

        await drive(O, timings, place if O.style == "place" else buy, waiters)
        figures = timings.figures()
        figures["order_errors"] = errors
        s = client.stats
        figures.update(book_gaps=s.book_gaps, conflated=s.conflated, dropped=s.backlog_dropped, orphan_replies=s.orphan_replies,
                       backlog_peak=s.backlog_peak, delivery_delay_p99_us=s.delivery_delay_p99_ns / 1000)
        if client._listener is not None:  # the server closes once its feed is over
            client._listener.send(b"done")  # the bench's end marker (not an API call)
    finally:
        await client.close()
    return count, figures


if __name__ == "__main__":
    run(main)
