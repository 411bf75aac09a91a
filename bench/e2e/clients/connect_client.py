"""``drbfast.connect`` as users run it: default options (no credentials, so a public
session: public/hello, public/set_heartbeat), ``subscribe(channels, callback=)`` and a
callback that reads a few fields (``few``: indexing ``data`` as a quoting strategy
would), decodes ``data`` fully (``full``: a lazy proxy is turned into dicts; without
``--lazy`` the client has done that already) or takes it as it comes (``parse``).
``--lazy`` runs ``connect(..., lazy=True)``.

The channels are those of the messages the server sends (build.payload() and
build.mix()), so every notification has a subscriber. Readiness: ``public/get_time``
through ``client.call`` after subscribing. The end: this client subscribes to
"bench.end"; the server then ends with a notification on it (instead of its
``bench_end`` method, which the public API does not hand out) and takes the client's
close as the "done" (a request would wait for rate-limit credits: the default credit
budget charges every test_request answer, and the flood sends 1,000 in well under a
second). A close from the server ends the run too.
drbfast's own log lines are counted, not printed (the mix's reply with an unknown id
logs a warning each time, and a full stderr pipe would block the client).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
from typing import Any

import drbfast

from ..build import mix, payload
from .common import Deadline, busy, run, ssl_context, url

END = "bench.end"


class CountingHandler(logging.Handler):
    """Counts drbfast's log records by level instead of writing them."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.counts: dict[str, int] = {}
        self.first: list[str] = []  # the first few, with ms since start-up

    def emit(self, record: logging.LogRecord) -> None:
        self.counts[record.levelname] = self.counts.get(record.levelname, 0) + 1
        if len(self.first) < 8:
            self.first.append(f"{record.relativeCreated:.0f} ms {record.levelname}: {record.getMessage()[:160]}")


def channels() -> list[str]:
    """Every channel the server's messages are on (the throughput payload, the mix)."""
    names = [json.loads(payload().read_text())["params"]["channel"]]
    for line in mix().read_text().splitlines():
        msg = json.loads(line)
        if msg.get("method") == "subscription":
            names.append(msg["params"]["channel"])
    return list(dict.fromkeys(names))


async def main(args: argparse.Namespace) -> tuple[int, dict[str, Any]]:
    logs = CountingHandler()
    dlog = logging.getLogger("drbfast")
    dlog.addHandler(logs)
    dlog.propagate = False
    count = 0
    cost = args.cost_us / 1e6
    deadline = Deadline(args.deadline_s)
    few, full = args.decode == "few", args.decode == "full" and args.lazy
    loop = asyncio.get_running_loop()
    done: asyncio.Future[str] = loop.create_future()

    def finish(why: str) -> None:
        if not done.done():
            done.set_result(why)

    def on_event(event: drbfast.Event) -> None:
        if event.kind == "disconnected":
            finish("closed")

    def on_note(channel: str, data: Any) -> None:
        nonlocal count
        if deadline.expired():
            finish("deadline")
            return
        count += 1
        if few:
            data["change_id"], data["timestamp"], data["bids"][0][1]
        elif full:
            data.as_dict() if hasattr(data, "as_dict") else data.as_list()
        busy(cost)

    # --lanes off (not a default row): every message delivered, to compare the Python
    # path per message with FastListener raw's. With the default lanes a book channel
    # whose queued changes pass book_bytes (16 MiB) is reset, and its changes are
    # refused until the resync's snapshot: in the 100k floods almost none is delivered.
    opts = {"lanes": False} if args.lanes == "off" else None
    client = await drbfast.connect(url(args), ssl=ssl_context(args), lazy=args.lazy, on_event=on_event, listener_options=opts)
    try:
        await client.subscribe(*channels(), callback=on_note)
        await client.subscribe(END, callback=lambda channel, data: finish("end"))
        await client.call("public/get_time")  # the server starts its mode
        if args.deadline_s:
            loop.call_later(args.deadline_s, finish, "deadline")
        await done
        s = client.stats  # before the close: the live listener's delay figures
    finally:
        await client.close()  # after bench.end, the server's "done"
    return count, {"delivered": count, "conflated": s.conflated, "dropped": s.backlog_dropped,
                   "book_resets": s.book_resets, "book_gaps": s.book_gaps, "overflows": s.overflows,
                   "queued_bytes_peak": s.queued_bytes_peak, "delay_p50_us": s.delivery_delay_p50_ns / 1000,
                   "delay_p99_us": s.delivery_delay_p99_ns / 1000, "delay_max_us": s.delivery_delay_max_ns / 1000,
                   "messages": s.messages, "test_replies": s.replies_sent, "reconnects": s.reconnects,
                   "orphan_replies": s.orphan_replies, "timeouts": s.timeouts, "responses": s.responses, "log_records": logs.counts, "log_first": logs.first, "lazy": args.lazy}


if __name__ == "__main__":
    run(main)
