"""Zero Python allocations on the heartbeat path.

``FastListener.feed_many`` runs the receive path (classification, counters, timestamps)
over one message N times in a C loop. Under tracemalloc, the memory allocated for
100,000 heartbeats is the same as for 10: nothing is allocated per message. (Over a
socket picows adds its own per-frame ``WSFrame``, which comes from a freelist.)
"""

from __future__ import annotations

import tracemalloc

from drbfast import FastListener

HB = b'{"params":{"type":"heartbeat"},"method":"heartbeat","jsonrpc":"2.0"}'
HB_SPACED = b'{ "method": "heartbeat", "params": { "type": "heartbeat" }, "jsonrpc": "2.0" }'
REPLY = b'{"jsonrpc":"2.0","id":"~drbfast~000000000001","result":{"version":"1.2.26"},"usIn":1,"usOut":2,"usDiff":1,"testnet":false}'


def allocated_blocks(listener: FastListener, payload: bytes, count: int) -> int:
    tracemalloc.start()
    try:
        before = tracemalloc.take_snapshot()
        listener.feed_many(payload, count)
        after = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    return sum(stat.count_diff for stat in after.compare_to(before, "filename") if stat.count_diff > 0)


def test_heartbeat_path_allocates_nothing_per_message() -> None:
    listener = FastListener(lambda p, b: None)
    for payload in (HB, HB_SPACED, REPLY):
        small = allocated_blocks(listener, payload, 10)
        large = allocated_blocks(listener, payload, 100_000)
        assert large <= small + 2, (payload, small, large)
    s = listener.stats
    assert s.heartbeats == 2 * 100_010 and s.test_replies == 100_010 and s.messages == 0
