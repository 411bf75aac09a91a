"""Order book benchmarks: drbfast's compiled book beside the usual Python approach.

Two ways to run it (from the repository root; pin to one core on a shared machine):

    taskset -c 1 python bench/bench_book.py            # the table for bench/BOOK_RESULTS.md
    taskset -c 1 python -m pytest bench/bench_book.py --benchmark-disable-gc \
        --benchmark-columns=min,median,mean,rounds -q -p no:cacheprovider

Competitors, each fed the same generated stream of real-shaped messages
(:mod:`drbfast.bookgen`: the live samples' layout, a ~400-level BTC-PERPETUAL book, a few
entries per side per change frame, mostly near the top):

* ``drbfast`` -- ``OrderBook.apply(bytes)``: one Python call per message, the bytes parsed
  and applied in C with continuity, unknown-level and crossed checks and rollback.
* ``drbfast C loop`` -- :func:`drbfast._book.apply_all`: the same C entry point the listener
  will call from picows' buffer, no Python call per message.
* ``orjson + SortedDict`` -- ``orjson.loads`` then ``sortedcontainers.SortedDict`` per side,
  with the ``prev_change_id`` check only (no crossed check, no rollback): the usual Python
  book.
* ``orjson + cryptofeed order_book`` -- ``orjson.loads`` then the ``order_book`` C extension
  cryptofeed uses (``pip install order-book``), same checks as the SortedDict book.

Figures: level updates per second end to end from message bytes (entries in change frames
/ time to apply the frames), per-message latency (the C entry point timed with
CLOCK_MONOTONIC per message; the Python competitors with perf_counter_ns per call, which
adds ~60 ns of timer cost to them), and the cost of reading the best bid and ask.
"""

from __future__ import annotations

import platform
import statistics
import sys
import time
import timeit
from pathlib import Path
from typing import Any, Callable

import orjson
from sortedcontainers import SortedDict  # type: ignore[import-untyped,unused-ignore]

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from drbfast._book import OrderBook, apply_all, measure_apply  # noqa: E402
from drbfast.bookgen import BookStreamGenerator  # noqa: E402

try:
    import order_book as cf_order_book  # type: ignore[import-not-found,unused-ignore]
except ImportError:  # optional competitor
    cf_order_book = None

CHANGES = 50_000
DEPTH = 400


def make_stream(changes: int = CHANGES, max_ops: int = 4, preset: str = "btc-perpetual",
                per_frame: list[int] | None = None) -> tuple[str, list[bytes], int]:
    """(channel, [snapshot, change...], level entries in the change frames); the entries
    of each change frame are appended to ``per_frame`` if given."""
    gen = BookStreamGenerator(preset, depth=DEPTH, max_ops=max_ops, seed=42)
    frames = [gen.snapshot()]
    levels = 0
    for _ in range(changes):
        frames.append(gen.change())
        levels += gen.last_level_updates
        if per_frame is not None:
            per_frame.append(gen.last_level_updates)
    return gen.channel, frames, levels


def interleaved_rates(channel: str, frames: list[bytes], per_frame: list[int],
                      chunk: int = 2_000) -> dict[str, list[float]]:
    """Level updates/s of every competitor on each chunk of the stream, the competitors
    taking turns chunk by chunk (so a burst of load from other processes on this shared
    machine hits them alike); the comparison is made per chunk."""
    books = {name: factory() for name, factory in competitors(channel).items()}
    c_book = OrderBook(channel)
    for book in books.values():
        book.apply(frames[0])
    apply_all(c_book, frames[:1])
    out: dict[str, list[float]] = {name: [] for name in [*books, "drbfast C loop"]}
    clock = time.perf_counter
    for start in range(1, len(frames), chunk):
        part = frames[start:start + chunk]
        levels = sum(per_frame[start - 1:start - 1 + chunk])
        for name, book in books.items():
            out[name].append(levels / _timed_loop(book, part))
        t0 = clock()
        bad = apply_all(c_book, part)
        out["drbfast C loop"].append(levels / (clock() - t0))
        assert bad == 0
    return out


class _PythonBook:
    """orjson.loads, then one mapping per side; the prev_change_id check only (no crossed
    check, no rollback): how a Python book is usually written."""

    def __init__(self) -> None:
        self.change_id = -1
        self.reset()

    def reset(self) -> None:
        raise NotImplementedError

    def sides(self) -> tuple[Any, Any]:
        raise NotImplementedError

    def apply(self, raw: bytes) -> None:
        data = orjson.loads(raw)["params"]["data"]
        if data["type"] == "snapshot":
            self.reset()
        elif data["prev_change_id"] != self.change_id:
            return
        bids, asks = self.sides()
        for side, levels in ((bids, data["bids"]), (asks, data["asks"])):
            for action, price, amount in levels:
                if action == "delete":
                    del side[price]
                else:
                    side[price] = amount
        self.change_id = data["change_id"]


class SortedDictBook(_PythonBook):
    """orjson + one ``sortedcontainers.SortedDict`` per side."""

    def reset(self) -> None:
        self.bids: Any = SortedDict()
        self.asks: Any = SortedDict()

    def sides(self) -> tuple[Any, Any]:
        return self.bids, self.asks


class CryptofeedBook(_PythonBook):
    """orjson + cryptofeed's ``order_book`` C extension (sorted C dicts per side)."""

    def reset(self) -> None:
        assert cf_order_book is not None
        self.book = cf_order_book.OrderBook()

    def sides(self) -> tuple[Any, Any]:
        return self.book.bids, self.book.asks


class _GivenRx:
    """apply(raw, rx_ns) as the listener calls it: the receive time is the caller's (it
    reads the clock per frame anyway), so the book does not read CLOCK_MONOTONIC itself
    (time.monotonic_ns() costs 60-230 ns on this VM, depending on the load)."""

    def __init__(self, channel: str) -> None:
        self.book = OrderBook(channel)

    def apply(self, raw: bytes) -> Any:
        return self.book.apply(raw, 1)


def _timed_loop(book: Any, part: list[bytes]) -> float:
    """Seconds to apply part, with no wrapper call per frame for the drbfast books."""
    clock = time.perf_counter
    if isinstance(book, _GivenRx):
        apply = book.book.apply
        t0 = clock()
        for raw in part:
            apply(raw, 1)
        return clock() - t0
    apply = book.apply
    t0 = clock()
    for raw in part:
        apply(raw)
    return clock() - t0


def competitors(channel: str) -> dict[str, Callable[[], Any]]:
    """name -> factory of a fresh book exposing apply(bytes)."""
    out: dict[str, Callable[[], Any]] = {
        "drbfast OrderBook.apply": lambda: OrderBook(channel),
        "drbfast OrderBook.apply, rx_ns given": lambda: _GivenRx(channel),
        "orjson + SortedDict": SortedDictBook,
    }
    if cf_order_book is not None:
        out["orjson + cryptofeed order_book"] = CryptofeedBook
    return out


def run_stream(book: Any, frames: list[bytes]) -> float:
    """Seconds to apply the change frames (the snapshot first, untimed)."""
    apply = book.apply
    apply(frames[0])
    changes = frames[1:]
    t0 = time.perf_counter()
    for raw in changes:
        apply(raw)
    return time.perf_counter() - t0


def latency_python(book: Any, frames: list[bytes]) -> list[int]:
    clock = time.perf_counter_ns
    book.apply(frames[0])
    out = []
    if isinstance(book, _GivenRx):
        given = book.book.apply
        for raw in frames[1:]:
            t0 = clock()
            given(raw, 1)
            out.append(clock() - t0)
        return out
    apply = book.apply
    for raw in frames[1:]:
        t0 = clock()
        apply(raw)
        out.append(clock() - t0)
    return out


def pct(values: list[int], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))]


def read_cost_ns(stmt: str, env: dict[str, Any], number: int = 1_000_000) -> float:
    """Best of 7 timeit runs, ns per read, minus the cost of the empty timeit loop."""
    empty = min(timeit.repeat("pass", number=number, repeat=7))
    t = min(timeit.repeat(stmt, globals=env, number=number, repeat=7))
    return (t - empty) / number * 1e9


def report() -> None:
    per_frame: list[int] = []
    channel, frames, levels = make_stream(per_frame=per_frame)
    sizes = [len(f) for f in frames[1:]]
    print(f"# stream: {len(frames) - 1} change frames after a {len(frames[0])} B snapshot of "
          f"{DEPTH}+{DEPTH} levels; {levels} level entries ({levels / (len(frames) - 1):.2f} per frame); "
          f"frame size median {statistics.median(sizes):.0f} B")
    print(f"# python {platform.python_version()}, {platform.machine()}, order_book "
          f"{'installed' if cf_order_book is not None else 'NOT installed'}")

    # correctness first: every competitor ends with the same book
    books = {name: factory() for name, factory in competitors(channel).items()}
    for b in books.values():
        run_stream(b, frames)
    ours = books["drbfast OrderBook.apply"]
    sd = books["orjson + SortedDict"]
    assert ours.bids() == [(p, a) for p, a in reversed(sd.bids.items())]
    assert ours.asks() == list(sd.asks.items())

    chunk_rates = interleaved_rates(channel, frames, per_frame)
    base_rates = chunk_rates["orjson + SortedDict"]
    rates = {name: statistics.median(r) for name, r in chunk_rates.items()}
    ratios = {name: statistics.median(x / y for x, y in zip(r, base_rates)) for name, r in chunk_rates.items()}
    latency: dict[str, list[int]] = {name: latency_python(factory(), frames) for name, factory in competitors(channel).items()}
    latency["drbfast C loop"] = measure_apply(OrderBook(channel), frames)[1:]

    print(f"# time.monotonic_ns() costs {read_cost_ns('clock()', {'clock': time.monotonic_ns}):.0f} ns here")
    print(f"\n{len(base_rates)} chunks of 2,000 frames, competitors taking turns per chunk; rates are the "
          "median (and best) over the chunks, the ratio is the median of the per-chunk ratios.")
    print("\n| book | level updates/s, median (best) | frames/s, median | latency per frame, median ns | p99 ns | vs orjson + SortedDict |")
    print("|---|---:|---:|---:|---:|---:|")
    per = levels / (len(frames) - 1)
    for name in ["drbfast OrderBook.apply", "drbfast OrderBook.apply, rx_ns given", "drbfast C loop",
                 *[n for n in chunk_rates if not n.startswith("drbfast")]]:
        lat = latency[name]
        label = "drbfast C loop (apply_all; latency: measure_apply)" if name == "drbfast C loop" else name
        print(f"| {label} | {rates[name]:,.0f} ({max(chunk_rates[name]):,.0f}) | {rates[name] / per:,.0f} | "
              f"{statistics.median(lat):,.0f} | {pct(lat, 0.99):,.0f} | {ratios[name]:.1f}x |")

    # snapshot cost
    t_snap = min(timeit.repeat(lambda: OrderBook(channel).apply(frames[0]), number=200, repeat=5)) / 200
    sd_snap = min(timeit.repeat(lambda: SortedDictBook().apply(frames[0]), number=200, repeat=5)) / 200
    print(f"\nsnapshot of {DEPTH}+{DEPTH} levels ({len(frames[0])} B): drbfast {t_snap * 1e6:.1f} us, "
          f"orjson + SortedDict {sd_snap * 1e6:.1f} us")

    # reads
    env: dict[str, Any] = {"b": ours, "sd": sd}
    reads = [
        ("drbfast book.best_bid", "b.best_bid"),
        ("drbfast book.best_ask", "b.best_ask"),
        ("drbfast book.best_bid_price (float, no tuple)", "b.best_bid_price"),
        ("drbfast book.spread", "b.spread"),
        ("drbfast book.bids(1) (bounds a best_bid read right after the top changed: list + tuple + 2 floats)", "b.bids(1)"),
        ("drbfast book.bids(10)", "b.bids(10)"),
        ("SortedDict bids.peekitem(-1)", "sd.bids.peekitem(-1)"),
        ("SortedDict bids.islice top 10", "list(sd.bids.items()[-10:])"),
    ]
    if cf_order_book is not None:
        env["cf"] = books["orjson + cryptofeed order_book"].book
        reads.append(("cryptofeed order_book bids.index(0)", "cf.bids.index(0)"))
    print("\n| read | ns (timeit, best of 7, empty loop subtracted) |")
    print("|---|---:|")
    read_ns: dict[str, float] = {}
    for name, stmt in reads:
        read_ns[name] = read_cost_ns(stmt, env, 200_000 if "10" in stmt else 1_000_000)
        print(f"| {name} | {read_ns[name]:.1f} |")

    # other shapes: larger frames (100ms aggregation on a busy book) and a small option book
    print("\n| stream (20,000 frames, same method) | level entries/frame | drbfast apply() level updates/s | C loop | orjson + SortedDict | apply() vs SortedDict |")
    print("|---|---:|---:|---:|---:|---:|")
    for label, max_ops, preset in (("busy 100ms frames", 20, "btc-perpetual"), ("option, 0.0005 tick", 4, "btc-option"),
                                   ("exponent prices (7.25e-06)", 4, "pepe-usdc")):
        counts: list[int] = []
        ch, fr, lv = make_stream(20_000, max_ops, preset, counts)
        r = interleaved_rates(ch, fr, counts)
        ratio = statistics.median(x / y for x, y in zip(r["drbfast OrderBook.apply"], r["orjson + SortedDict"]))
        print(f"| {label} | {lv / (len(fr) - 1):.1f} | {statistics.median(r['drbfast OrderBook.apply']):,.0f} | "
              f"{statistics.median(r['drbfast C loop']):,.0f} | {statistics.median(r['orjson + SortedDict']):,.0f} | {ratio:.1f}x |")

    print("\nTargets:")
    ok1 = rates["drbfast OrderBook.apply"] >= 1_000_000
    ok2 = ratios["drbfast OrderBook.apply"] >= 5
    worst_read = max(read_ns["drbfast book.best_bid"], read_ns["drbfast book.best_ask"])
    ok3 = worst_read < 100
    print(f"- >= 1,000,000 level updates/s end to end from bytes (apply()): "
          f"{rates['drbfast OrderBook.apply']:,.0f} -> {'met' if ok1 else 'NOT met'}")
    print(f"- >= 5x orjson + SortedDict: {ratios['drbfast OrderBook.apply']:.1f}x -> {'met' if ok2 else 'NOT met'}")
    print(f"- best bid/ask read < 100 ns: {worst_read:.1f} ns -> {'met' if ok3 else 'NOT met'}")


# --- pytest-benchmark ----------------------------------------------------------------------

PYTEST_CHANNEL, PYTEST_FRAMES, PYTEST_LEVELS = make_stream(10_000) if "pytest" in sys.modules else ("", [], 0)


def _bench_names() -> list[str]:
    return list(competitors(PYTEST_CHANNEL or "book.X.100ms"))


def pytest_generate_tests(metafunc: Any) -> None:
    if "competitor" in metafunc.fixturenames:
        metafunc.parametrize("competitor", _bench_names())


def test_stream_apply(benchmark: Any, competitor: str) -> None:
    """Apply 10,000 change frames (after a snapshot) to a fresh book; extra_info has the rate."""
    factory = competitors(PYTEST_CHANNEL)[competitor]
    benchmark.group = f"book stream: {len(PYTEST_FRAMES) - 1} change frames, {PYTEST_LEVELS} level entries"

    def run() -> None:
        book = factory()
        book.apply(PYTEST_FRAMES[0])
        _timed_loop(book, PYTEST_FRAMES[1:])

    benchmark.pedantic(run, rounds=5, iterations=1)
    if benchmark.stats is not None:  # None under --benchmark-disable
        benchmark.extra_info["level_updates_per_s"] = round(PYTEST_LEVELS / benchmark.stats.stats.min)


def test_stream_c_loop(benchmark: Any) -> None:
    benchmark.group = f"book stream: {len(PYTEST_FRAMES) - 1} change frames, {PYTEST_LEVELS} level entries"
    benchmark.pedantic(lambda: apply_all(OrderBook(PYTEST_CHANNEL), PYTEST_FRAMES), rounds=5, iterations=1)
    if benchmark.stats is not None:  # None under --benchmark-disable
        benchmark.extra_info["level_updates_per_s"] = round(PYTEST_LEVELS / benchmark.stats.stats.min)


def test_read_best_bid(benchmark: Any, competitor: str) -> None:
    benchmark.group = "read the best bid"
    book = competitors(PYTEST_CHANNEL)[competitor]()
    for raw in PYTEST_FRAMES:
        book.apply(raw)
    if isinstance(book, _GivenRx):
        book = book.book
    if isinstance(book, OrderBook):
        benchmark(getattr, book, "best_bid")
    elif isinstance(book, SortedDictBook):
        benchmark(book.bids.peekitem, -1)
    else:
        benchmark(book.book.bids.index, 0)


if __name__ == "__main__":
    report()
