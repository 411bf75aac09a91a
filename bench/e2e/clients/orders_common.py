"""What every order client does (the order round-trip bench, bench/e2e/orders.py):

* idle (``--seconds 0``): ``--warmup`` W then ``--orders`` N buys, one at a time (send,
  wait for its ack, next);
* flood (``--seconds S``): the server runs its paced feed beside; the client consumes it
  (``--cost-us`` busy per notification) and places a buy every ``--every-ms``
  milliseconds for S seconds (several may be in flight when acks are slow), then waits
  up to ``--grace-s`` for the last acks.

Each order is timed with ``time.perf_counter_ns`` from just before the send call to the
moment user code sees its ack. An order never acked counts with the time it waited
(a lower bound) and as late. The client then sends ``done`` and prints, through
:func:`common.run`, ``order_n`` (acked), ``order_sent``, ``order_unacked``,
``order_late`` (acked after more than 1 s, or never) and ``order_p50_us`` ...
``order_max_us`` over the measured orders.

Peers write requests as a user of their stack would: a dict with an id, encoded with
their codec; replies are matched by id. Ids start at 1,000,000 (the feed's one reply
has another id; see orders.orders_mix).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
import json
from typing import Any, AsyncIterable, Awaitable, Callable

from .common import PUBLIC_TEST, READY, Deadline, busy

INSTRUMENT = "BTC-PERPETUAL"
AMOUNT = 10
PRICE = 86_750.5
FIRST_ID = 1_000_000
LATE_NS = 1_000_000_000


def order_args() -> argparse.Namespace:
    """The order options; removed from sys.argv so common.parse_args sees the rest."""
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--orders", type=int, default=2000)
    p.add_argument("--warmup", type=int, default=200)
    p.add_argument("--seconds", type=float, default=0.0, help="flood: place orders this long (0: idle)")
    p.add_argument("--every-ms", type=float, default=10.0)
    p.add_argument("--grace-s", type=float, default=3.0)
    p.add_argument("--style", choices=("place", "await"), default="place")
    p.add_argument("--codec", default="json")
    p.add_argument("--channels", default="", help="flood: the feed's channels, comma-separated (drbfast subscribes)")
    ns, rest = p.parse_known_args(sys.argv[1:])
    sys.argv[1:] = rest
    return ns


def request(req_id: int, label: str) -> dict[str, Any]:
    """The request a peer's user builds: the same fields drbfast's template sends."""
    return {"jsonrpc": "2.0", "id": req_id, "method": "private/buy",
            "params": {"instrument_name": INSTRUMENT, "amount": AMOUNT, "type": "limit", "price": PRICE, "label": label}}


def percentile(sorted_ns: list[int], q: float) -> float:
    if not sorted_ns:
        return 0.0
    return sorted_ns[min(int(q * len(sorted_ns)), len(sorted_ns) - 1)] / 1000.0


class Timings:
    """Send and ack times of the measured orders, by id."""

    def __init__(self) -> None:
        self.sent: dict[int, int] = {}
        self.rtts: list[int] = []
        self.late = 0

    def start(self, key: int) -> None:
        self.sent[key] = time.perf_counter_ns()

    def acked(self, key: int) -> bool:
        """Record the ack of ``key`` (False if it is not an order in flight)."""
        t1 = time.perf_counter_ns()
        t0 = self.sent.pop(key, None)
        if t0 is None:
            return False
        self.rtts.append(t1 - t0)
        if t1 - t0 > LATE_NS:
            self.late += 1
        return True

    def figures(self) -> dict[str, Any]:
        now = time.perf_counter_ns()
        unacked = [now - t0 for t0 in self.sent.values()]
        values = sorted(self.rtts + unacked)
        return {"order_n": len(self.rtts), "order_sent": len(self.rtts) + len(unacked), "order_unacked": len(unacked),
                "order_late": self.late + len(unacked), "order_p50_us": percentile(values, .5),
                "order_p90_us": percentile(values, .9), "order_p99_us": percentile(values, .99),
                "order_max_us": values[-1] / 1000.0 if values else 0.0}


async def drive(o: argparse.Namespace, timings: Timings, send: Callable[[int], Awaitable[None] | None], waiters: dict[int, asyncio.Future[None]]) -> None:
    """Place the orders: ``send(req_id)`` sends one (timed from just before it; it may
    return an awaitable, awaited at once: a stack whose send is a coroutine);
    ``waiters[req_id]`` is resolved when its ack is seen."""
    loop = asyncio.get_running_loop()
    req_id = FIRST_ID
    if not o.seconds:
        for i in range(o.warmup + o.orders):
            req_id += 1
            fut = waiters[req_id] = loop.create_future()
            if i >= o.warmup:
                timings.start(req_id)
            sent = send(req_id)
            if sent is not None:
                await sent
            await fut
        return
    every = o.every_ms / 1000.0
    end = loop.time() + o.seconds
    next_at = loop.time()
    while loop.time() < end:
        req_id += 1
        waiters[req_id] = loop.create_future()
        timings.start(req_id)
        try:
            sent = send(req_id)
            if sent is not None:
                await sent
        except Exception:
            # The server closes once its feed is over; a client held up behind its
            # backlog may get here only then: this order was never sent.
            del waiters[req_id], timings.sent[req_id]
            break
        next_at += every
        if next_at < loop.time():  # the loop was held up (a slow consumer): skip missed slots
            next_at = loop.time() + every
        await asyncio.sleep(next_at - loop.time())
    pending = [f for f in waiters.values() if not f.done()]
    if pending:
        await asyncio.wait(pending, timeout=o.grace_s)


class Inbox:
    """A peer's handling of each parsed message: an ack (a reply whose id an order
    waits for) is timed and wakes its waiter; a test_request gets its answer (returned
    for the caller to send); a notification costs ``cost`` seconds busy."""

    def __init__(self, timings: Timings, waiters: dict[int, asyncio.Future[None]], cost: float) -> None:
        self.timings = timings
        self.waiters = waiters
        self.cost = cost
        self.count = 0
        self.ids = 0

    def handle(self, msg: dict[str, Any]) -> str | None:
        if "id" in msg:
            fut = self.waiters.pop(msg["id"], None)
            if fut is not None:
                self.timings.acked(msg["id"])
                if "result" in msg:
                    msg["result"]["order"]["order_id"]  # what a user reads of the ack
                fut.set_result(None)
            return None
        if msg.get("method") == "heartbeat":
            if msg["params"]["type"] == "test_request":
                self.ids += 1
                return PUBLIC_TEST % self.ids
            return None
        self.count += 1
        busy(self.cost)
        return None


async def stream_orders(o: argparse.Namespace, cost: float, send_text: Callable[[str], Awaitable[None]],
                        messages: AsyncIterable[Any], closed: tuple[type[BaseException], ...],
                        tag: str) -> tuple[int, dict[str, Any]]:
    """The whole run of a peer whose socket is a stream of text messages with an async
    send (websockets, aiohttp): a reader task parses each message (json) and matches
    replies by id while :func:`drive` places the orders; ``done`` at the end (``closed``:
    the stack's exceptions for a connection the server already closed)."""
    timings = Timings()
    inbox = Inbox(timings, {}, cost)
    deadline = Deadline(o.seconds + o.grace_s + 1 if o.seconds else 0)

    async def reader() -> None:
        async for text in messages:
            if deadline.expired():
                break
            answer = inbox.handle(json.loads(text))
            if answer is not None:
                await send_text(answer)

    async def send(req_id: int) -> None:
        await send_text(json.dumps(request(req_id, f"{tag}-{req_id}")))

    await send_text(READY)
    task = asyncio.create_task(reader())
    await drive(o, timings, send, inbox.waiters)
    figures = timings.figures()
    try:
        await send_text("done")
    except closed:
        pass  # the server closes once its feed is over
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    return inbox.count, figures
