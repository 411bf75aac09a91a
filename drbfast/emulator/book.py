"""One instrument's order book and its matching engine (sans-I/O).

Price-time priority: each price level is a FIFO queue; an incoming order trades against
the best opposite level first, oldest order first, at the resting order's price. The
book keeps the amounts it last published per stream (``raw``: every change as it
happens; ``agg``: the 100ms/agg2 channels, once per tick), so a ``book.*`` change frame
is the exact difference between two states and a snapshot is the state at its
``change_id``.
"""

from __future__ import annotations

import bisect
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from .instruments import DIGITS, Instrument

__all__ = ["Fill", "Order", "OrderBook", "Published", "STREAMS"]


def _r(x: float) -> float:
    return round(x, DIGITS)


@dataclass(eq=False)  # identity: two orders with equal fields are still two orders
class Order:
    """An order of an account, or of the emulator's own market flow (``synthetic``)."""

    order_id: str
    account: str
    connection: int | None
    instrument: Instrument
    direction: str  # "buy" | "sell"
    amount: float
    price: float | None  # None: market
    order_type: str
    created_ms: int
    label: str = ""
    time_in_force: str = "good_til_cancelled"
    post_only: bool = False
    reject_post_only: bool = False
    reduce_only: bool = False
    max_show: float | None = None
    state: str = "open"
    filled_amount: float = 0.0
    #: sum of price * amount of the fills, for average_price
    cost: float = 0.0
    updated_ms: int = 0
    replaced: bool = False
    synthetic: bool = False
    expires_ms: int | None = None
    cancel_reason: str | None = None
    user_id: int = 0

    @property
    def remaining(self) -> float:
        return _r(self.amount - self.filled_amount)

    @property
    def average_price(self) -> float:
        return _r(self.cost / self.filled_amount) if self.filled_amount else 0.0

    @property
    def is_open(self) -> bool:
        return self.state in ("open", "untriggered")

    def as_dict(self) -> dict[str, Any]:
        """The order object of private/buy, get_order_state and user.orders (the
        documented keys, alphabetical as in the OLD sample, plus the live ones)."""
        inst = self.instrument
        d: dict[str, Any] = {
            "amount": self.amount,
            "api": True,
            "average_price": self.average_price,
            "contracts": _r(self.amount / inst.contract_size),
            "creation_timestamp": self.created_ms,
            "direction": self.direction,
            "filled_amount": self.filled_amount,
            "instrument_name": inst.name,
            "is_liquidation": False,
            "is_rebalance": False,
            "label": self.label,
            "last_update_timestamp": self.updated_ms or self.created_ms,
            "max_show": self.amount if self.max_show is None else self.max_show,
            "mmp": False,
            "order_id": self.order_id,
            "order_state": self.state,
            "order_type": self.order_type,
            "post_only": self.post_only,
            "price": self.price if self.price is not None else "market_price",
            "reduce_only": self.reduce_only,
            "replaced": self.replaced,
            "risk_reducing": False,
            "time_in_force": self.time_in_force,
            "user_id": self.user_id,
            "web": False,
        }
        if self.post_only:
            d["reject_post_only"] = self.reject_post_only
        if self.cancel_reason is not None:
            d["cancel_reason"] = self.cancel_reason
        return d


@dataclass
class Fill:
    """One match: ``taker`` traded ``amount`` at ``price`` with the resting ``maker``."""

    maker: Order
    taker: Order
    price: float
    amount: float


@dataclass
class Published:
    """What one stream of ``book.*`` frames last told its subscribers."""

    bids: dict[float, float] = field(default_factory=dict)
    asks: dict[float, float] = field(default_factory=dict)
    dirty_bids: set[float] = field(default_factory=set)
    dirty_asks: set[float] = field(default_factory=set)


#: The book streams: every change at once, and the per-tick aggregate.
STREAMS = ("raw", "agg")


@dataclass
class OrderBook:
    instrument: Instrument
    bids: dict[float, deque[Order]] = field(default_factory=dict)
    asks: dict[float, deque[Order]] = field(default_factory=dict)
    #: sorted ascending
    bid_prices: list[float] = field(default_factory=list)
    ask_prices: list[float] = field(default_factory=list)
    #: per stream, the amounts per price as of its last change frame
    streams: dict[str, Published] = field(default_factory=lambda: {s: Published() for s in STREAMS})

    def _side(self, direction: str) -> tuple[dict[float, deque[Order]], list[float]]:
        if direction == "buy":
            return self.bids, self.bid_prices
        return self.asks, self.ask_prices

    def touch(self, direction: str, price: float) -> None:
        """Mark a level as changed for every stream."""
        for pub in self.streams.values():
            (pub.dirty_bids if direction == "buy" else pub.dirty_asks).add(price)

    def dirty(self, stream: str) -> bool:
        pub = self.streams[stream]
        return bool(pub.dirty_bids or pub.dirty_asks)

    def best_bid(self) -> float | None:
        return self.bid_prices[-1] if self.bid_prices else None

    def best_ask(self) -> float | None:
        return self.ask_prices[0] if self.ask_prices else None

    def level_amount(self, direction: str, price: float) -> float:
        side = self.bids if direction == "buy" else self.asks
        q = side.get(price)
        return _r(sum(o.remaining for o in q)) if q else 0.0

    def levels(self, direction: str, depth: int | None = None) -> list[list[float]]:
        """``[price, amount]`` pairs best first."""
        prices = reversed(self.bid_prices) if direction == "buy" else iter(self.ask_prices)
        out: list[list[float]] = []
        for p in prices:
            if depth is not None and len(out) >= depth:
                break
            out.append([p, self.level_amount(direction, p)])
        return out

    def rest(self, order: Order) -> None:
        """Put an order (with a price) at the back of its level's queue."""
        assert order.price is not None
        side, prices = self._side(order.direction)
        q = side.get(order.price)
        if q is None:
            q = side[order.price] = deque()
            bisect.insort(prices, order.price)
        q.append(order)
        self.touch(order.direction, order.price)

    def remove(self, order: Order) -> None:
        if order.price is None:
            return
        side, prices = self._side(order.direction)
        q = side.get(order.price)
        if q is None:
            return
        try:
            q.remove(order)
        except ValueError:
            return
        self.touch(order.direction, order.price)
        if not q:
            del side[order.price]
            prices.pop(bisect.bisect_left(prices, order.price))

    def crosses(self, direction: str, price: float | None) -> bool:
        """Would an order at ``price`` trade at once?"""
        if direction == "buy":
            best = self.best_ask()
            return best is not None and (price is None or price >= best)
        best = self.best_bid()
        return best is not None and (price is None or price <= best)

    def available(self, direction: str, price: float | None, exclude: str | None = None) -> float:
        """How much an order could take at once up to ``price`` (for fill-or-kill)."""
        total = 0.0
        prices = self.ask_prices if direction == "buy" else list(reversed(self.bid_prices))
        side = self.asks if direction == "buy" else self.bids
        for p in prices:
            if price is not None and ((direction == "buy" and p > price) or (direction == "sell" and p < price)):
                break
            total += sum(o.remaining for o in side[p] if o.account != exclude or exclude is None)
        return _r(total)

    def match(self, taker: Order, limit: float | None) -> list[Fill]:
        """Trade ``taker`` against the book up to ``limit`` (None: any price)."""
        fills: list[Fill] = []
        maker_dir = "sell" if taker.direction == "buy" else "buy"
        side, prices = self._side(maker_dir)
        while taker.remaining > 0 and prices:
            best = prices[0] if taker.direction == "buy" else prices[-1]
            if limit is not None and ((taker.direction == "buy" and best > limit) or (taker.direction == "sell" and best < limit)):
                break
            q = side[best]
            while q and taker.remaining > 0:
                maker = q[0]
                amount = min(maker.remaining, taker.remaining)
                for o in (maker, taker):
                    o.filled_amount = _r(o.filled_amount + amount)
                    o.cost += best * amount
                fills.append(Fill(maker, taker, best, amount))
                if maker.remaining <= 0:
                    maker.state = "filled"
                    q.popleft()
            self.touch(maker_dir, best)
            if not q:
                del side[best]
                prices.pop(0 if taker.direction == "buy" else -1)
        return fills

    # ------------------------------------------------------------ publication

    def snapshot_levels(self, stream: str = "agg") -> tuple[list[list[Any]], list[list[Any]]]:
        """A stream's published state as snapshot levels ``["new", price, amount]``."""
        pub = self.streams[stream]
        bids = [["new", p, a] for p, a in sorted(pub.bids.items(), reverse=True)]
        asks = [["new", p, a] for p, a in sorted(pub.asks.items())]
        return bids, asks

    def flush(self, stream: str = "agg") -> tuple[list[list[Any]], list[list[Any]]]:
        """A stream's changes since its last flush as ``[action, price, amount]`` levels
        (bids best first, asks best first), which become its published state."""
        pub = self.streams[stream]
        out: list[list[list[Any]]] = []
        for direction, published, dirty in (("buy", pub.bids, pub.dirty_bids),
                                             ("sell", pub.asks, pub.dirty_asks)):
            changes: list[list[Any]] = []
            for p in dirty:
                now = self.level_amount(direction, p)
                before = published.get(p)
                if now > 0 and before is None:
                    changes.append(["new", p, now])
                    published[p] = now
                elif now > 0 and before != now:
                    changes.append(["change", p, now])
                    published[p] = now
                elif now <= 0 and before is not None:
                    changes.append(["delete", p, 0.0])
                    del published[p]
            dirty.clear()
            changes.sort(key=lambda lvl: -lvl[1] if direction == "buy" else lvl[1])
            out.append(changes)
        return out[0], out[1]

