"""drbfast: FastListener answers test_requests in C; notifications go to the hook,
parsed with simdjson (lazy field access for ``few``, full decode for ``full``)."""

from __future__ import annotations

import argparse
import asyncio

import picows
import simdjson

from drbfast import FastListener

from .common import run, ssl_context, url


async def main(args: argparse.Namespace) -> int:
    parser = simdjson.Parser()
    count = 0
    done = asyncio.get_running_loop().create_future()
    holder: list[FastListener] = []

    def on_message(payload: bytes, binary: bool) -> None:
        nonlocal count
        if payload.startswith(b'{"jsonrpc":"2.0","method":"bench_end"'):
            holder[0].send(b"done")
            return
        count += 1
        if args.decode == "few":
            # lazy proxies, as drbfast.connect(lazy=True) hands them to a callback
            doc = parser.parse(payload)
            data = doc["params"]["data"]
            data["change_id"], data["timestamp"], data["bids"][0][1]
            del data, doc
        else:
            parser.parse(payload, True)

    def factory() -> FastListener:
        # backlog_limit: the 100k-message flood is absorbed whole (~100 MB) instead of
        # pausing reads at the default 50k (see bench/RESULTS.md).
        holder.append(FastListener(on_message, None, lambda l: done.done() or done.set_result(None), backlog_limit=1_000_000))
        return holder[0]

    await picows.ws_connect(factory, url(args), ssl_context=ssl_context(args))
    await done
    return count


if __name__ == "__main__":
    run(main)
