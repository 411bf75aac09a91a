"""Real-shaped Deribit ``book.*`` streams, for the book benchmarks and tests.

The shapes are the live samples' (tests/samples/sub_book_*_live*.json, PROTOCOL.md 4.2,
4.3): compact JSON in the live key order, a ``snapshot`` with every level as
``["new", price, amount]`` (bids best first descending, asks ascending), then ``change``
frames whose ``prev_change_id`` is the previous ``change_id`` while ``change_id`` itself
jumps (the counter is shared by many instruments); a few entries per side per frame,
mostly near the top of the book; deletes carry amount 0. Prices sit on the instrument's
tick and print as Python prints floats (``86775.5``, ``0.0005``, ``1e-05``). The grouped
form (``book.{instrument}.{group}.{depth}.{interval}``) is the current top ``depth``
levels as ``[price, amount]`` pairs.

The generator keeps the true book, so a consumer's book can be compared with it.
"""

from __future__ import annotations

import json
import random
from decimal import Decimal
from typing import Any

__all__ = ["BookStreamGenerator", "PRESETS"]

#: name -> (instrument, tick, mid, lot): a BTC inverse perpetual (USD amounts), an option
#: (coin amounts, 0.0005 tick), small linear perpetuals (1e-05 ticks; prices that print
#: in exponent form, 7.25e-06).
PRESETS: dict[str, tuple[str, float, float, float]] = {
    "btc-perpetual": ("BTC-PERPETUAL", 0.5, 86775.5, 10.0),
    "btc-option": ("BTC-26DEC26-100000-C", 0.0005, 0.0415, 0.1),
    "algo-usdc": ("ALGO_USDC-PERPETUAL", 0.00001, 0.11374, 1.0),
    "pepe-usdc": ("PEPE_USDC-PERPETUAL", 1e-09, 7.25e-06, 1000000.0),
}


def _decimals(x: float) -> int:
    return max(0, -int(Decimal(repr(x)).normalize().as_tuple().exponent))


class BookStreamGenerator:
    """A seeded book that moves like a live one and prints its frames.

    ``snapshot()``, ``change()`` and ``grouped(depth)`` return one whole notification as
    bytes and advance the state; ``stream(n)`` is a snapshot then ``n`` changes.
    ``bids``/``asks`` (price -> amount) are the book after the last frame, and
    ``last_level_updates`` the number of entries in the last frame.
    """

    def __init__(self, preset: str = "btc-perpetual", *, interval: str = "100ms", depth: int = 400,
                 max_ops: int = 4, seed: int = 1) -> None:
        self.instrument, self.tick, mid, self.lot = PRESETS[preset]
        self.interval = interval
        self.depth = depth
        self.max_ops = max_ops
        self.rng = random.Random(seed)
        self._price_digits = _decimals(self.tick)
        self._lot_digits = _decimals(self.lot)
        # the book in tick units: index -> amount
        centre = round(mid / self.tick)
        self._bids: dict[int, float] = {centre - 1 - k: self._amount() for k in range(depth)}
        self._asks: dict[int, float] = {centre + 1 + k: self._amount() for k in range(depth)}
        self.change_id = 193_809_616_666
        self.timestamp = 1_790_133_840_448
        self.last_level_updates = 0

    @property
    def channel(self) -> str:
        return f"book.{self.instrument}.{self.interval}"

    def grouped_channel(self, depth: int, group: str = "none") -> str:
        return f"book.{self.instrument}.{group}.{depth}.{self.interval}"

    def price(self, index: int) -> float:
        return round(index * self.tick, self._price_digits)

    @property
    def bids(self) -> list[tuple[float, float]]:
        return [(self.price(i), a) for i, a in sorted(self._bids.items(), reverse=True)]

    @property
    def asks(self) -> list[tuple[float, float]]:
        return [(self.price(i), a) for i, a in sorted(self._asks.items())]

    def _amount(self) -> float:
        return round(self.lot * self.rng.randint(1, 5000), self._lot_digits)

    def _advance(self) -> int:
        prev = self.change_id
        self.change_id += self.rng.randint(1, 3000)
        self.timestamp += self.rng.randint(1, 200)
        return prev

    @staticmethod
    def _encode(channel: str, data: dict[str, Any]) -> bytes:
        msg = {"jsonrpc": "2.0", "method": "subscription", "params": {"channel": channel, "data": data}}
        return json.dumps(msg, separators=(",", ":")).encode()

    def snapshot_data(self) -> dict[str, Any]:
        self._advance()
        self.last_level_updates = len(self._bids) + len(self._asks)
        return {
            "timestamp": self.timestamp, "type": "snapshot", "change_id": self.change_id,
            "instrument_name": self.instrument,
            "bids": [["new", p, a] for p, a in self.bids],
            "asks": [["new", p, a] for p, a in self.asks],
        }

    def snapshot(self) -> bytes:
        return self._encode(self.channel, self.snapshot_data())

    def grouped(self, depth: int = 20, group: str = "none") -> bytes:
        """The top ``depth`` levels as the grouped channel sends them (after one change)."""
        self.change_data()
        self._advance()
        bids, asks = self.bids[:depth], self.asks[:depth]
        self.last_level_updates = len(bids) + len(asks)
        data = {"timestamp": self.timestamp, "change_id": self.change_id, "instrument_name": self.instrument,
                "bids": [[p, a] for p, a in bids], "asks": [[p, a] for p, a in asks]}
        return self._encode(self.grouped_channel(depth, group), data)

    def _near_top(self, levels: list[int]) -> int:
        # mostly the first few levels, sometimes anywhere (a deep order moved)
        if self.rng.random() < 0.05:
            return self.rng.randrange(len(levels))
        return min(int(self.rng.expovariate(0.4)), len(levels) - 1)

    def _ops(self, side: dict[int, float], other: dict[int, float], is_bid: bool) -> list[list[Any]]:
        out: list[list[Any]] = []
        for _ in range(self.rng.randint(0, self.max_ops)):
            ranked = sorted(side, reverse=is_bid)          # best first
            roll = self.rng.random()
            # lean towards the target depth
            p_new = 0.25 + (0.2 if len(side) < self.depth else -0.2 if len(side) > self.depth * 1.1 else 0)
            if roll < p_new or len(side) < 3:
                best_other = min(other) if is_bid else max(other)
                top = ranked[0] if ranked else (best_other - 1 if is_bid else best_other + 1)
                for _try in range(8):
                    d = int(self.rng.expovariate(0.3)) - 1       # -1: one tick better than the best
                    idx = top - d if is_bid else top + d
                    if idx not in side and (idx < best_other if is_bid else idx > best_other):
                        break
                else:
                    # the top is full: a new level behind the last one
                    idx = (min(side, default=top) - 1) if is_bid else (max(side, default=top) + 1)
                side[idx] = self._amount()
                out.append(["new", self.price(idx), side[idx]])
            elif roll < 0.75:
                idx = ranked[self._near_top(ranked)]
                side[idx] = self._amount()
                out.append(["change", self.price(idx), side[idx]])
            else:
                idx = ranked[self._near_top(ranked)]
                del side[idx]
                out.append(["delete", self.price(idx), 0.0])
        # Deribit keeps each side's entries best first; a stable sort keeps the order of
        # entries for one price.
        out.sort(key=lambda e: -e[1] if is_bid else e[1])
        return out

    def change_data(self) -> dict[str, Any]:
        bids = self._ops(self._bids, self._asks, True)
        asks = self._ops(self._asks, self._bids, False)
        if not bids and not asks:
            idx = max(self._bids)
            self._bids[idx] = self._amount()
            bids = [["change", self.price(idx), self._bids[idx]]]
        prev = self._advance()
        self.last_level_updates = len(bids) + len(asks)
        return {"timestamp": self.timestamp, "type": "change", "change_id": self.change_id,
                "instrument_name": self.instrument, "bids": bids, "asks": asks, "prev_change_id": prev}

    def change(self) -> bytes:
        return self._encode(self.channel, self.change_data())

    def stream(self, changes: int) -> list[bytes]:
        """A snapshot followed by ``changes`` change frames."""
        return [self.snapshot()] + [self.change() for _ in range(changes)]
