"""A synthetic but realistic market: instruments, order books, tickers and trades.

Shapes follow the live samples (PROTOCOL.md 4): a book channel starts with a
``snapshot`` (every level as ``["new", price, amount]``) then ``change`` frames whose
``prev_change_id`` is the previous frame's ``change_id``. The ``change_id`` counter is
shared by every instrument of a currency, so it jumps between two frames of one book.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Instrument", "Market", "parse_channel", "INTERVALS"]

#: Intervals a channel may name; ``raw`` needs an authenticated connection.
INTERVALS = ("raw", "100ms", "agg2")


@dataclass
class Instrument:
    name: str
    currency: str
    kind: str  # "future" or "option"
    tick: float
    mid: float
    bids: dict[float, float] = field(default_factory=dict)
    asks: dict[float, float] = field(default_factory=dict)
    change_id: int = 0
    trade_seq: int = 0


def _default_instruments() -> list[Instrument]:
    return [
        Instrument("BTC-PERPETUAL", "BTC", "future", 0.5, 86_750.0),
        Instrument("ETH-PERPETUAL", "ETH", "future", 0.05, 3_210.0),
        Instrument("BTC-26DEC26", "BTC", "future", 2.5, 88_100.0),
        Instrument("BTC-26DEC26-100000-C", "BTC", "option", 0.0005, 0.0415),
        Instrument("BTC-26DEC26-80000-P", "BTC", "option", 0.0005, 0.0380),
        Instrument("ETH-26DEC26-4000-C", "ETH", "option", 0.0005, 0.0520),
    ]


def parse_channel(channel: str) -> tuple[str, str | None, str | None]:
    """Split a channel name into (kind, instrument, interval); kind "" if not served.

    Served: ``book.{instrument}.{interval}``, ``ticker.{instrument}.{interval}``,
    ``trades.{instrument}.{interval}``, ``user.orders.{instrument}.raw``, ``platform_state``.
    """
    if channel == "platform_state":
        return "platform_state", None, None
    parts = channel.split(".")
    if len(parts) == 3 and parts[0] in ("book", "ticker", "trades"):
        return parts[0], parts[1], parts[2]
    if len(parts) == 4 and parts[0] == "user" and parts[1] == "orders" and parts[3] == "raw":
        return "user.orders", parts[2], "raw"
    return "", None, None


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def notification(channel: str, data: Any) -> bytes:
    """A subscription notification in the live key order (jsonrpc, method, params)."""
    return _dumps({"jsonrpc": "2.0", "method": "subscription", "params": {"channel": channel, "data": data}})


class Market:
    """Instruments and their synthetic evolution, driven by a seeded RNG."""

    def __init__(self, seed: int = 1, depth: int = 20) -> None:
        self.rng = random.Random(seed)
        self.instruments: dict[str, Instrument] = {i.name: i for i in _default_instruments()}
        self.depth = depth
        #: one change_id counter per currency, shared by its instruments
        self._change_ids: dict[str, int] = {"BTC": 193_809_616_000, "ETH": 74_502_110_000}
        self._trade_ids = 48_079_269
        for inst in self.instruments.values():
            self._seed_book(inst)

    def _round(self, inst: Instrument, price: float) -> float:
        return round(round(price / inst.tick) * inst.tick, 8)

    def _amount(self, inst: Instrument) -> float:
        if inst.kind == "option":
            return round(self.rng.uniform(0.1, 25.0), 1)
        if inst.currency == "BTC":
            return float(self.rng.randrange(10, 50_000, 10))
        return float(self.rng.randrange(1, 20_000))

    def _next_change_id(self, inst: Instrument) -> int:
        # Other instruments of the currency move the counter too: it jumps.
        self._change_ids[inst.currency] += self.rng.randint(1, 40)
        inst.change_id = self._change_ids[inst.currency]
        return inst.change_id

    def _seed_book(self, inst: Instrument) -> None:
        best_bid = self._round(inst, inst.mid - inst.tick)
        best_ask = self._round(inst, inst.mid + inst.tick)
        for k in range(self.depth):
            inst.bids[self._round(inst, best_bid - k * inst.tick)] = self._amount(inst)
            inst.asks[self._round(inst, best_ask + k * inst.tick)] = self._amount(inst)
        self._next_change_id(inst)

    def resume_after(self, name: str, change_id: int) -> None:
        """Continue a book's chain after a flood that used change_ids up to ``change_id``."""
        inst = self.instruments[name]
        inst.change_id = change_id
        self._change_ids[inst.currency] = max(self._change_ids[inst.currency], change_id)

    def snapshot(self, name: str, now_ms: int) -> dict[str, Any]:
        """The book as a ``snapshot`` frame's data (bids best first, asks best first)."""
        inst = self.instruments[name]
        return {
            "timestamp": now_ms,
            "type": "snapshot",
            "change_id": inst.change_id,
            "instrument_name": name,
            "bids": [["new", p, a] for p, a in sorted(inst.bids.items(), reverse=True)],
            "asks": [["new", p, a] for p, a in sorted(inst.asks.items())],
        }

    def step_book(self, name: str, now_ms: int) -> dict[str, Any]:
        """Move the book a little; return the ``change`` frame's data."""
        inst = self.instruments[name]
        prev = inst.change_id
        bids: list[list[Any]] = []
        asks: list[list[Any]] = []
        for side, out, sign in ((inst.bids, bids, -1), (inst.asks, asks, 1)):
            for _ in range(self.rng.randint(1, 3)):
                roll = self.rng.random()
                prices = sorted(side)
                if roll < 0.5 and prices:
                    price = self.rng.choice(prices)
                    side[price] = self._amount(inst)
                    out.append(["change", price, side[price]])
                elif roll < 0.75 and len(prices) > 5:
                    price = self.rng.choice(prices)
                    del side[price]
                    out.append(["delete", price, 0.0])
                else:
                    edge = max(prices) if sign > 0 else min(prices)
                    price = self._round(inst, edge + sign * inst.tick * self.rng.randint(1, 3))
                    if price > 0 and price not in side:
                        side[price] = self._amount(inst)
                        out.append(["new", price, side[price]])
        # keep the book uncrossed: drop asks at or under the best bid
        best_bid = max(inst.bids)
        for price in [p for p in inst.asks if p <= best_bid]:
            del inst.asks[price]
            asks.append(["delete", price, 0.0])
        if not inst.asks:
            price = self._round(inst, best_bid + inst.tick)
            inst.asks[price] = self._amount(inst)
            asks.append(["new", price, inst.asks[price]])
        inst.mid = (max(inst.bids) + min(inst.asks)) / 2
        bids.sort(key=lambda lvl: -lvl[1])
        asks.sort(key=lambda lvl: lvl[1])
        return {
            "timestamp": now_ms,
            "type": "change",
            "prev_change_id": prev,
            "change_id": self._next_change_id(inst),
            "instrument_name": name,
            "bids": bids,
            "asks": asks,
        }

    def ticker(self, name: str, now_ms: int) -> dict[str, Any]:
        """A ticker frame's data in the live field order."""
        inst = self.instruments[name]
        best_bid = max(inst.bids)
        best_ask = min(inst.asks)
        return {
            "timestamp": now_ms,
            "state": "open",
            "index_price": round(inst.mid * 0.9998, 2),
            "instrument_name": name,
            "last_price": self._round(inst, inst.mid),
            "min_price": self._round(inst, inst.mid * 0.985),
            "max_price": self._round(inst, inst.mid * 1.015),
            "open_interest": 459.3409,
            "mark_price": round(inst.mid, 4),
            "best_ask_price": best_ask,
            "best_bid_price": best_bid,
            "best_ask_amount": inst.asks[best_ask],
            "best_bid_amount": inst.bids[best_bid],
        }

    def trades(self, name: str, now_ms: int) -> list[dict[str, Any]]:
        """Zero to two trades (``trades.*`` data is an array)."""
        inst = self.instruments[name]
        out = []
        for _ in range(self.rng.choice((0, 0, 1, 1, 2))):
            self._trade_ids += 1
            inst.trade_seq += 1
            direction = self.rng.choice(("buy", "sell"))
            price = min(inst.asks) if direction == "buy" else max(inst.bids)
            out.append({
                "amount": self._amount(inst),
                "direction": direction,
                "index_price": round(inst.mid * 0.9998, 2),
                "instrument_name": name,
                "mark_price": round(inst.mid, 4),
                "price": price,
                "tick_direction": self.rng.randint(0, 3),
                "timestamp": now_ms,
                "trade_id": str(self._trade_ids),
                "trade_seq": inst.trade_seq,
            })
        return out
