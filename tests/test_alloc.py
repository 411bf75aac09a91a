"""Zero Python allocations on the heartbeat path.

What is proven, and how:

1. ``test_*_allocate_nothing_per_message`` count *every call* into CPython's allocators
   (``PyMem_RawMalloc``/``PyMem_Malloc``/``PyObject_Malloc`` and their calloc/realloc),
   transient ones included, through a counting hook installed with ``PyMem_SetAllocator``
   (a small C module compiled into a temporary directory by the fixture below; the test
   is skipped without a C compiler). Frames are fed through the listener's real entry
   point, ``FastListener.on_ws_frame(transport, frame)``, with a ``WSFrame`` made by
   picows' own ``_make_test_ws_frame`` (so its payload pointer is what picows would pass),
   from a Python loop over ``itertools.repeat`` (which allocates nothing itself). The
   count for 100,000 frames equals the count for 10: nothing is allocated per frame by
   the listener, the classifier, the stats, or the call into the listener. A positive
   control shows the counter sees one allocation per OTHER message (the ``bytes`` handed
   to the hook), so a zero is not the counter being blind.
2. The same for a ``test_request`` over a real loopback connection: the answer is
   built in the listener's scratch buffer and written by picows without any Python
   allocation, as long as the kernel accepts the write (a full socket buffer would make
   asyncio queue the rest, which allocates; the test stays far below that).
3. ``test_tracemalloc_*``: under tracemalloc, the memory still allocated after 100,000
   heartbeats is no larger than after 1,000 (no per-message retention anywhere in the
   process), through both ``on_ws_frame`` and the C-loop ``feed_many``.

Not covered: picows' own work before ``on_ws_frame`` (its read buffer and the
``WSFrame`` it reuses per connection), which happens in picows, not in drbfast.
"""

from __future__ import annotations

import asyncio
import itertools
import shutil
import subprocess
import sys
import sysconfig
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from picows import WSListener, WSMsgType, ws_connect, ws_create_server
from picows.picows import _make_test_ws_frame

from drbfast import FastListener

TIMEOUT = 10.0
#: Allowed difference in allocator calls between a short and a long run (per-call noise).
SLACK = 4
HB = b'{"params":{"type":"heartbeat"},"method":"heartbeat","jsonrpc":"2.0"}'
HB_DOCS = b'{"jsonrpc":"2.0","method":"heartbeat","params":{"type":"heartbeat"}}'
HB_SPACED = b'{ "method" : "heart\\u0062eat", "params" : { "type" : "heartbeat", "x": [1, 2.5e3, null] }, "jsonrpc" : "2.0" }'
TR = b'{"params":{"type":"test_request"},"method":"heartbeat","jsonrpc":"2.0"}'
REPLY = b'{"jsonrpc":"2.0","id":"~drbfast~000000000001","result":{"version":"1.2.26"},"usIn":1,"usOut":2,"usDiff":1,"testnet":false}'
NOTE = b'{"jsonrpc":"2.0","method":"subscription","params":{"channel":"ticker.BTC-PERPETUAL.raw","data":{"x":1}}}'

COUNTER_C = r"""
#define PY_SSIZE_T_CLEAN
#include <Python.h>
/* Counts calls into the three CPython allocator domains, forwarding to the previous
   allocators (PyMem_SetAllocator allows such hooks after initialisation). */
static PyMemAllocatorEx orig[3];
static unsigned long long counts[3];
static int active = 0;
#define HOOKS(D) \
static void* m##D(void* ctx, size_t n) { __atomic_fetch_add(&counts[D], 1, __ATOMIC_RELAXED); return orig[D].malloc(orig[D].ctx, n); } \
static void* c##D(void* ctx, size_t a, size_t b) { __atomic_fetch_add(&counts[D], 1, __ATOMIC_RELAXED); return orig[D].calloc(orig[D].ctx, a, b); } \
static void* r##D(void* ctx, void* p, size_t n) { __atomic_fetch_add(&counts[D], 1, __ATOMIC_RELAXED); return orig[D].realloc(orig[D].ctx, p, n); } \
static void f##D(void* ctx, void* p) { orig[D].free(orig[D].ctx, p); }
HOOKS(0) HOOKS(1) HOOKS(2)
static PyObject* start(PyObject* self, PyObject* unused) {
    PyMemAllocatorEx h0 = {NULL, m0, c0, r0, f0}, h1 = {NULL, m1, c1, r1, f1}, h2 = {NULL, m2, c2, r2, f2};
    if (active) { PyErr_SetString(PyExc_RuntimeError, "already counting"); return NULL; }
    PyMem_GetAllocator(PYMEM_DOMAIN_RAW, &orig[0]);
    PyMem_GetAllocator(PYMEM_DOMAIN_MEM, &orig[1]);
    PyMem_GetAllocator(PYMEM_DOMAIN_OBJ, &orig[2]);
    counts[0] = counts[1] = counts[2] = 0;
    PyMem_SetAllocator(PYMEM_DOMAIN_RAW, &h0);
    PyMem_SetAllocator(PYMEM_DOMAIN_MEM, &h1);
    PyMem_SetAllocator(PYMEM_DOMAIN_OBJ, &h2);
    active = 1;
    Py_RETURN_NONE;
}
static PyObject* stop(PyObject* self, PyObject* unused) {
    unsigned long long total;
    if (!active) { PyErr_SetString(PyExc_RuntimeError, "not counting"); return NULL; }
    PyMem_SetAllocator(PYMEM_DOMAIN_RAW, &orig[0]);
    PyMem_SetAllocator(PYMEM_DOMAIN_MEM, &orig[1]);
    PyMem_SetAllocator(PYMEM_DOMAIN_OBJ, &orig[2]);
    active = 0;
    total = counts[0] + counts[1] + counts[2];
    return PyLong_FromUnsignedLongLong(total);
}
static PyMethodDef methods[] = {
    {"start", start, METH_NOARGS, "start counting allocator calls"},
    {"stop", stop, METH_NOARGS, "stop counting; return the number of calls"},
    {NULL, NULL, 0, NULL}};
static struct PyModuleDef mod = {PyModuleDef_HEAD_INIT, "_drbfast_alloc_counter", NULL, -1, methods};
PyMODINIT_FUNC PyInit__drbfast_alloc_counter(void) { return PyModule_Create(&mod); }
"""


@pytest.fixture(scope="module")
def counter(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    cc = (sysconfig.get_config_var("CC") or "cc").split()
    if shutil.which(cc[0]) is None:
        pytest.skip(f"no C compiler ({cc[0]}) to build the allocation counter")
    build = tmp_path_factory.mktemp("alloc_counter")
    (build / "counter.c").write_text(COUNTER_C)
    target = build / ("_drbfast_alloc_counter" + sysconfig.get_config_var("EXT_SUFFIX"))
    subprocess.run(cc + ["-shared", "-fPIC", "-O2", "-I", sysconfig.get_paths()["include"],
                         str(build / "counter.c"), "-o", str(target)], check=True, timeout=120)
    sys.path.insert(0, str(build))
    try:
        import _drbfast_alloc_counter as module  # type: ignore[import-not-found]
    finally:
        sys.path.remove(str(build))
    yield module


def count_allocations(counter: ModuleType, run: Callable[[int], Any], n: int) -> int:
    counter.start()
    try:
        run(n)
    finally:
        calls = counter.stop()
    return int(calls)


def frame_feeder(listener: FastListener, payload: bytes, transport: Any = None) -> Callable[[int], None]:
    """n calls of the listener's picows entry point with one prebuilt frame."""
    frame = _make_test_ws_frame(WSMsgType.TEXT, payload, True, False)
    on_frame = listener.on_ws_frame
    repeat = itertools.repeat

    def run(n: int) -> None:
        for _ in repeat(None, n):
            on_frame(transport, frame)
    return run


@pytest.mark.parametrize("payload,counter_name", [
    (HB, "heartbeats"), (HB_DOCS, "heartbeats"), (HB_SPACED, "heartbeats"), (REPLY, "test_replies"),
], ids=["heartbeat_production", "heartbeat_docs_order", "heartbeat_spaced_escaped", "engine_reply"])
def test_heartbeat_path_allocates_nothing_per_message(counter: ModuleType, payload: bytes, counter_name: str) -> None:
    listener = FastListener(lambda p, b, lane, ch, rx: None)
    run = frame_feeder(listener, payload)
    run(100)  # warm up (first-call caches)
    small = count_allocations(counter, run, 10)
    large = count_allocations(counter, run, 100_000)
    # SLACK absorbs per-call noise (e.g. a float result that misses its free list); one
    # allocation per frame would add 99,990.
    assert large <= small + SLACK, f"{large - small} allocations for 99,990 more frames"
    assert getattr(listener.stats, counter_name) == 100_110
    assert listener.stats.messages == 0
    # The C-loop entry point too.
    small = count_allocations(counter, lambda n: listener.feed_many(payload, n), 10)
    large = count_allocations(counter, lambda n: listener.feed_many(payload, n), 100_000)
    assert large <= small + SLACK, f"{large - small} allocations for 99,990 more messages"


def test_counter_sees_per_message_allocations(counter: ModuleType) -> None:
    """Positive control: an OTHER message is copied to bytes for the hook, once each."""
    listener = FastListener(lambda p, b, lane, ch, rx: None)
    run = frame_feeder(listener, NOTE)
    run(10)
    small = count_allocations(counter, run, 10)
    large = count_allocations(counter, run, 10_010)
    assert large - small >= 10_000


class _Sink(WSListener):
    received = 0

    def on_ws_frame(self, transport: Any, frame: Any) -> None:
        _Sink.received += 1


async def test_test_request_answer_allocates_nothing(counter: ModuleType) -> None:
    _Sink.received = 0
    server = await ws_create_server(lambda request: _Sink(), "127.0.0.1", 0)
    url = f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}/"
    transport, listener = await asyncio.wait_for(ws_connect(lambda: FastListener(lambda p, b, lane, ch, rx: None), url), TIMEOUT)
    assert isinstance(listener, FastListener)
    try:
        run = frame_feeder(listener, TR, transport)
        run(10)
        small = count_allocations(counter, run, 10)
        await asyncio.sleep(0.05)  # let the server drain its socket
        # 1,000 answers are ~87 kB: far below the loopback socket buffer, so every write
        # goes straight to the kernel.
        large = count_allocations(counter, run, 1_000)
        assert large <= small + SLACK, f"{large - small} allocations for 990 more answers"
        assert listener.stats.replies_sent == 1_020
        deadline = asyncio.get_running_loop().time() + TIMEOUT
        while _Sink.received < 1_020 and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.005)
        assert _Sink.received == 1_020, "every answer reached the server"
    finally:
        transport.disconnect()
        await asyncio.wait_for(transport.wait_disconnected(), TIMEOUT)
        server.close()
        await asyncio.wait_for(server.wait_closed(), TIMEOUT)


def retained_after(run: Callable[[int], Any], n: int) -> tuple[int, int]:
    """(bytes, blocks) still allocated after run(n), as tracemalloc sees them."""
    tracemalloc.start()
    try:
        before = tracemalloc.take_snapshot()
        run(n)
        after = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    diff = after.compare_to(before, "filename")
    return sum(d.size_diff for d in diff), sum(d.count_diff for d in diff)


@pytest.mark.parametrize("payload", [HB, HB_SPACED, REPLY], ids=["heartbeat", "heartbeat_spaced", "engine_reply"])
def test_tracemalloc_nothing_retained(payload: bytes) -> None:
    listener = FastListener(lambda p, b, lane, ch, rx: None)
    for run in (frame_feeder(listener, payload), lambda n: listener.feed_many(payload, n)):
        run(100)
        small = retained_after(run, 1_000)
        large = retained_after(run, 100_000)
        # A per-message leak of even one byte would show as >= 99,000 bytes here.
        assert large[0] <= small[0] + 1024 and large[1] <= small[1] + 4, (small, large)
