"""The emulator's own market: index prices, fair values, and a synthetic order flow that
quotes and trades through the real matching engine (so a user's resting quotes get
filled by it), plus the public data shapes built from that state (ticker, quote, ...).

Seeded and deterministic for a given sequence of calls. Options are priced with
Black-Scholes on the index (coin-denominated like Deribit: USD value / index).
"""

from __future__ import annotations

import json
import math
import random
from typing import Any, Protocol

from .book import Order, OrderBook
from .instruments import DIGITS, Instrument

__all__ = ["Market", "Venue", "black_scholes"]

#: Synthetic order flow's account name (never a real API key).
MARKET_ACCOUNT = "~market~"
YEAR_MS = 365 * 24 * 3600 * 1000


def _ncdf(x: float) -> float:
    return 0.5 * (1 + math.erf(x / math.sqrt(2)))


def _npdf(x: float) -> float:
    return math.exp(-x * x / 2) / math.sqrt(2 * math.pi)


def black_scholes(call: bool, spot: float, strike: float, years: float, vol: float) -> dict[str, float]:
    """USD price and greeks (Deribit's units: vega per 1 vol point, theta per day)."""
    years = max(years, 1e-6)
    sq = vol * math.sqrt(years)
    d1 = (math.log(spot / strike) + 0.5 * vol * vol * years) / sq
    d2 = d1 - sq
    if call:
        price = spot * _ncdf(d1) - strike * _ncdf(d2)
        delta = _ncdf(d1)
        rho = strike * years * _ncdf(d2) / 100
    else:
        price = strike * _ncdf(-d2) - spot * _ncdf(-d1)
        delta = _ncdf(d1) - 1
        rho = -strike * years * _ncdf(-d2) / 100
    gamma = _npdf(d1) / (spot * sq)
    vega = spot * _npdf(d1) * math.sqrt(years) / 100
    theta = -spot * _npdf(d1) * vol / (2 * math.sqrt(years)) / 365
    return {"price": price, "delta": delta, "gamma": gamma, "vega": vega, "theta": theta, "rho": rho}


class Venue(Protocol):
    """What the market needs of the exchange it trades on (:class:`~.exchange.Exchange`
    is one): its instruments and books, the flow's own orders, and the book streams'
    change_ids. The exchange, in turn, asks the market for prices."""

    instruments: dict[str, Instrument]
    books: dict[str, OrderBook]
    stream_ids: dict[tuple[str, str], int]

    def synthetic_orders(self, instrument: str) -> list[Order]: ...

    def place_synthetic(self, inst: Instrument, direction: str, amount: float, price: float | None,
                        now_ms: int) -> None: ...

    def cancel_synthetic(self, order: Order, now_ms: int) -> None: ...

    def open_interest(self, inst: Instrument) -> float: ...

    def publish_book(self, name: str, stream: str = "agg") -> tuple[int, int, list[list[Any]], list[list[Any]]] | None: ...

    def next_change_id(self, inst: Instrument) -> int: ...


class Market:
    """Index prices per currency and the synthetic flow of every instrument.

    A market works over a :class:`Venue`: pass it here, or later to :meth:`bind` (the
    exchange does, for the market it is given). A market of its own, with no accounts,
    for its book frames: :func:`drbfast.emulator.exchange.standalone_market`."""

    def __init__(self, exchange: Venue | None = None, seed: int = 1, depth: int = 20, taker_rate: float = 0.3) -> None:
        self.seed = seed
        self.depth = depth
        #: probability per step and instrument that the flow sends a market order
        self.taker_rate = taker_rate
        if exchange is not None:
            self.bind(exchange)

    def bind(self, exchange: Venue) -> None:
        """Set up over ``exchange``'s instruments (the exchange calls this)."""
        seed = self.seed
        self.exchange = exchange
        self.rng = random.Random(seed)
        self.index: dict[str, float] = {}
        self.settlement: dict[str, float] = {}
        self.vol: dict[str, float] = {}
        self.basis: dict[str, float] = {}
        self.last_price: dict[str, float] = {}
        self.high: dict[str, float] = {}
        self.low: dict[str, float] = {}
        self.volume: dict[str, float] = {}
        for inst in exchange.instruments.values():
            cur = inst.currency
            if inst.name == f"{cur}-PERPETUAL":
                self.index[cur] = round(inst.mid * 0.9998, 2)
        for inst in exchange.instruments.values():
            self.index.setdefault(inst.currency, inst.mid if inst.kind == "future" else 1.0)
            if inst.kind == "option":
                assert inst.strike is not None
                moneyness = math.log(inst.strike / self.index[inst.currency])
                self.vol[inst.name] = 0.52 + 0.35 * moneyness * moneyness
            else:
                self.basis[inst.name] = inst.mid / self.index[inst.currency] - 1
        self.settlement = {cur: round(px * 0.996, 2) for cur, px in self.index.items()}

    # ------------------------------------------------------------ prices

    def years_left(self, inst: Instrument, now_ms: int) -> float:
        return max(inst.expiration_timestamp - now_ms, 60_000) / YEAR_MS

    def fair(self, inst: Instrument, now_ms: int) -> float:
        """Where the flow quotes around: index plus basis, or the option's model price."""
        spot = self.index[inst.currency]
        if inst.kind == "option":
            assert inst.strike is not None
            bs = black_scholes(inst.option_type == "call", spot, inst.strike, self.years_left(inst, now_ms), self.vol[inst.name])
            return max(bs["price"] / spot, inst.tick_size)
        return spot * (1 + self.basis[inst.name])

    def price_band(self, inst: Instrument, mark: float) -> tuple[float, float]:
        """The ticker's ``min_price`` / ``max_price``: nothing trades outside them (a
        future: mark -/+ 1.5 %; an option: a tick up to 1.5x mark)."""
        if inst.kind == "future":
            return inst.round_price(mark * 0.985), inst.round_price(mark * 1.015)
        return inst.tick_size, inst.round_price(mark * 1.5 + 0.01)

    def mark(self, inst: Instrument, now_ms: int) -> float:
        """Mark price: the book's mid when both sides exist, else the fair value."""
        book = self.exchange.books[inst.name]
        bid, ask = book.best_bid(), book.best_ask()
        fair = self.fair(inst, now_ms)
        if bid is not None and ask is not None and inst.kind == "future":
            return round((bid + ask) / 2, 4)
        return round(fair, 4 if inst.kind == "future" else 8)

    def funding(self, inst: Instrument, now_ms: int) -> dict[str, float]:
        """Perpetual funding fields: premium of mark over index, clamped like Deribit's."""
        index = self.index[inst.currency]
        premium = (self.mark(inst, now_ms) - index) / index
        current = max(-0.005, min(0.005, premium))
        return {"current_funding": round(current, 10), "funding_8h": round(current / 8 * 3, 10),
                "interest_value": round(current * 1000, 10)}

    # ------------------------------------------------------------ flow

    def _amount(self, inst: Instrument) -> float:
        if inst.kind == "option":
            return round(self.rng.randint(1, 250) * inst.min_trade_amount, DIGITS)
        top = 5000 if inst.currency == "BTC" else 20_000
        return float(self.rng.randint(1, top) * inst.contract_size)

    def seed_books(self, now_ms: int) -> None:
        for inst in self.exchange.instruments.values():
            self._replenish(inst, now_ms, levels=self.depth)

    def _replenish(self, inst: Instrument, now_ms: int, levels: int, most: int | None = None) -> None:
        """Quote the empty price levels among the ``levels`` nearest the fair price on
        each side (at most ``most`` new quotes per side), never crossing the book."""
        book = self.exchange.books[inst.name]
        fair = self.fair(inst, now_ms)
        tick = inst.tick_for(fair)
        base = inst.round_price(fair)
        for direction in ("buy", "sell"):
            side = book.bids if direction == "buy" else book.asks
            step = -tick if direction == "buy" else tick
            placed = 0
            for k in range(1, levels + 1):
                if most is not None and placed >= most:
                    break
                price = round(base + k * step, DIGITS)
                if inst.tick_size_steps:  # the tick may change along the way (options)
                    price = inst.round_price(price)
                if price <= 0 or price in side or book.crosses(direction, price):
                    continue
                if most is not None and self.rng.random() < 0.5:
                    continue  # leave some holes: a real book is not a comb
                self.exchange.place_synthetic(inst, direction, self._amount(inst), price, now_ms)
                placed += 1

    def step(self, now_ms: int) -> None:
        """Move every index a little; each instrument's flow cancels some quotes, adds
        new ones and sometimes sends a market order that trades against the book."""
        for cur in self.index:
            self.index[cur] = round(self.index[cur] * (1 + self.rng.gauss(0, 0.00008)), 2)
        for inst in self.exchange.instruments.values():
            book = self.exchange.books[inst.name]
            mine = [o for o in self.exchange.synthetic_orders(inst.name)]
            for order in mine:
                if self.rng.random() < 0.04:
                    self.exchange.cancel_synthetic(order, now_ms)
            self._replenish(inst, now_ms, self.depth, most=3)
            if self.rng.random() < self.taker_rate and book.bid_prices and book.ask_prices:
                direction = self.rng.choice(("buy", "sell"))
                self.exchange.place_synthetic(inst, direction, self._amount(inst) / 5 or inst.min_trade_amount,
                                              None, now_ms)

    def on_trade(self, inst: Instrument, price: float, amount: float) -> int:
        """Record a trade; return Deribit's tick_direction (0 +, 1 0+, 2 -, 3 0-)."""
        last = self.last_price.get(inst.name)
        self.last_price[inst.name] = price
        self.high[inst.name] = max(self.high.get(inst.name, price), price)
        self.low[inst.name] = min(self.low.get(inst.name, price), price)
        self.volume[inst.name] = self.volume.get(inst.name, 0.0) + amount
        if last is None or price > last:
            return 0
        if price < last:
            return 2
        return 1

    # ------------------------------------------------------------ public shapes

    def ticker(self, inst: Instrument, now_ms: int, stats: bool = False) -> dict[str, Any]:
        """A ticker in the live field order (``sub_ticker_live.json``)."""
        book = self.exchange.books[inst.name]
        bid, ask = book.best_bid(), book.best_ask()
        mark = self.mark(inst, now_ms)
        band = self.price_band(inst, mark)
        index = self.index[inst.currency]
        last = self.last_price.get(inst.name, inst.round_price(mark))
        d: dict[str, Any] = {
            "timestamp": now_ms,
            "state": "open",
            "index_price": index,
            "instrument_name": inst.name,
            "last_price": last,
            "settlement_price": self.settlement[inst.currency] if inst.kind == "future" else round(mark * 0.99, 8),
            "min_price": band[0],
            "max_price": band[1],
            "open_interest": self.exchange.open_interest(inst),
            "mark_price": mark,
        }
        if inst.perpetual:
            f = self.funding(inst, now_ms)
            d["interest_value"] = f["interest_value"]
            d["current_funding"] = f["current_funding"]
        d["estimated_delivery_price"] = index
        if inst.perpetual:
            d["funding_8h"] = self.funding(inst, now_ms)["funding_8h"]
        if inst.kind == "option":
            assert inst.strike is not None
            vol = self.vol[inst.name]
            g = black_scholes(inst.option_type == "call", index, inst.strike, self.years_left(inst, now_ms), vol)
            d["underlying_price"] = index
            future = "-".join(inst.name.split("-")[:2])  # the same expiry's future, e.g. BTC-26DEC26
            d["underlying_index"] = future if future in self.exchange.instruments else "index_price"
            d["interest_rate"] = 0.0
            d["mark_iv"] = round(vol * 100, 2)
            d["bid_iv"] = round(vol * 100 - 1.5, 2) if bid is not None else 0.0
            d["ask_iv"] = round(vol * 100 + 1.5, 2) if ask is not None else 0.0
            d["greeks"] = {"delta": round(g["delta"], 5), "gamma": round(g["gamma"], 8), "vega": round(g["vega"], 5),
                           "theta": round(g["theta"], 5), "rho": round(g["rho"], 5)}
        d["best_ask_price"] = ask if ask is not None else 0.0
        d["best_bid_price"] = bid if bid is not None else 0.0
        d["best_ask_amount"] = book.level_amount("sell", ask) if ask is not None else 0.0
        d["best_bid_amount"] = book.level_amount("buy", bid) if bid is not None else 0.0
        if stats:
            high = self.high.get(inst.name, last)
            low = self.low.get(inst.name, last)
            d["stats"] = {"high": high, "low": low, "price_change": 0.0, "volume": round(self.volume.get(inst.name, 0.0), 8),
                          "volume_usd": round(self.volume.get(inst.name, 0.0) * (1 if inst.inverse else index), 2)}
        return d

    def quote(self, inst: Instrument, now_ms: int) -> dict[str, Any]:
        book = self.exchange.books[inst.name]
        bid, ask = book.best_bid(), book.best_ask()
        return {"timestamp": now_ms, "instrument_name": inst.name,
                "best_ask_price": ask if ask is not None else 0.0, "best_bid_price": bid if bid is not None else 0.0,
                "best_ask_amount": book.level_amount("sell", ask) if ask is not None else 0.0,
                "best_bid_amount": book.level_amount("buy", bid) if bid is not None else 0.0}

    def index_data(self, currency: str, now_ms: int) -> dict[str, Any]:
        return {"index_name": f"{currency.lower()}_usd", "price": self.index[currency], "timestamp": now_ms}

    def perpetual(self, inst: Instrument, now_ms: int) -> dict[str, Any]:
        return {"index_price": self.index[inst.currency], "interest": self.funding(inst, now_ms)["current_funding"],
                "timestamp": now_ms}

    def mark_prices(self, currency: str, now_ms: int) -> list[dict[str, Any]]:
        """``markprice.options.{index}``: every option's mark and IV."""
        return [{"timestamp": now_ms, "mark_price": self.mark(i, now_ms), "iv": round(self.vol[i.name], 4),
                 "instrument_name": i.name}
                for i in self.exchange.instruments.values() if i.kind == "option" and i.currency == currency]

    def ranking(self, currency: str, now_ms: int) -> list[dict[str, Any]]:
        """``deribit_price_ranking.{index}``: the index constituents (synthetic prices)."""
        px = self.index[currency]
        out = []
        for n, name in enumerate(("bitfinex", "bitstamp", "coinbase", "gemini", "itbit", "kraken", "okcoin")):
            p = round(px * (1 + (n - 3) * 0.0001), 2)
            out.append({"enabled": True, "identifier": name, "original_price": p, "price": p,
                        "timestamp": now_ms - n * 37, "weight": 14.285714})
        return out


    # ------------------------------------------------------------ book frames

    @property
    def instruments(self) -> dict[str, _BookView]:
        """Each book's published levels as ``.bids``/``.asks`` {price: amount} dicts."""
        return {name: _BookView(self.exchange, name) for name in self.exchange.instruments}

    def snapshot(self, name: str, now_ms: int) -> dict[str, Any]:
        """A ``book.{name}.100ms`` snapshot frame's data (the published state)."""
        bids, asks = self.exchange.books[name].snapshot_levels("agg")
        return {"timestamp": now_ms, "type": "snapshot", "change_id": self.exchange.stream_ids[name, "agg"],
                "instrument_name": name, "bids": bids, "asks": asks}

    def step_book(self, name: str, now_ms: int) -> dict[str, Any]:
        """Let the market move one tick; return ``book.{name}.100ms``'s change frame
        data (continuous with the previous one; empty level lists if nothing moved)."""
        self.step(now_ms)
        ex = self.exchange
        res = ex.publish_book(name, "agg")
        if res is None:
            prev = ex.stream_ids[name, "agg"]
            cur = ex.stream_ids[name, "agg"] = ex.next_change_id(ex.instruments[name])
            res = (prev, cur, [], [])
        prev, cur, bids, asks = res
        return {"timestamp": now_ms, "type": "change", "prev_change_id": prev, "change_id": cur,
                "instrument_name": name, "bids": bids, "asks": asks}


class _BookView:
    def __init__(self, exchange: Venue, name: str) -> None:
        pub = exchange.books[name].streams["agg"]
        self.name = name
        self.bids = pub.bids
        self.asks = pub.asks


def notification(channel: str, data: Any, label: str | None = None) -> bytes:
    """A subscription notification in the live key order (jsonrpc, method, params)."""
    params: dict[str, Any] = {"channel": channel, "data": data}
    if label is not None:
        params["label"] = label
    return json.dumps({"jsonrpc": "2.0", "method": "subscription", "params": params}, separators=(",", ":")).encode()


__all__ += ["MARKET_ACCOUNT", "Order", "notification"]
