"""Sub-accounts: balances, positions, trades, order history and credit pools (sans-I/O).

P&L follows the instrument: inverse futures (amounts in USD, settled in coin) realize
``size * (1/entry - 1/exit)`` coin; options (priced in coin) ``size * (exit - entry)``.
Fees are the instrument's maker/taker commission of the traded value, in coin; option
fees are capped at 12.5 % of the option price, as on Deribit.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..ratelimit import CreditBucket, Credits
from .book import Order
from .instruments import DIGITS, Instrument

__all__ = ["Account", "IpCredits", "Position", "RateLimits"]


def _r(x: float) -> float:
    return round(x, DIGITS)


@dataclass(frozen=True)
class RateLimits:
    """The three credit pools of PROTOCOL.md 9, shared by every connection of a
    sub-account (unauthenticated requests share one set per IP address)."""

    non_matching: Credits = Credits(cost=500, cap=50_000, refill=10_000.0)
    matching: Credits = Credits(cost=10_000, cap=200_000, refill=50_000.0)  # lowest tier: 5/s, burst 20
    subscribe: Credits = Credits(cost=3_000, cap=30_000, refill=10_000.0)

    def buckets(self) -> dict[str, CreditBucket]:
        return {"non_matching": CreditBucket(self.non_matching), "matching": CreditBucket(self.matching),
                "subscribe": CreditBucket(self.subscribe)}

    def as_limits(self) -> dict[str, Any]:
        """``get_account_summary.limits`` (shape of a 2023 testnet capture, PROTOCOL.md 9)."""
        def pool(c: Credits) -> dict[str, Any]:
            return {"rate": _rate(c.refill / c.cost), "burst": _rate(c.cap / c.cost)}
        return {"non_matching_engine": pool(self.non_matching), "matching_engine": pool(self.matching)}


class IpCredits:
    """Unauthenticated requests share one set of credit pools per IP address."""

    def __init__(self, limits: RateLimits) -> None:
        self.limits = limits
        self._by_ip: dict[str, dict[str, CreditBucket]] = {}

    def __call__(self, ip: str) -> dict[str, CreditBucket]:
        """The pools of ``ip`` (made full on first use)."""
        b = self._by_ip.get(ip)
        if b is None:
            b = self._by_ip[ip] = self.limits.buckets()
        return b


def _rate(x: float) -> float | int:
    return int(x) if x == int(x) else round(x, 3)


@dataclass
class Position:
    instrument: Instrument
    #: signed: futures in USD, options in coin; > 0 long
    size: float = 0.0
    average_price: float = 0.0
    realized_pnl: float = 0.0

    def apply(self, direction: str, amount: float, price: float) -> float:
        """Book a fill; return the P&L it realized (coin)."""
        signed = amount if direction == "buy" else -amount
        realized = 0.0
        inverse = self.instrument.inverse
        if self.size == 0 or (self.size > 0) == (signed > 0):
            total = abs(self.size) + amount
            if inverse:
                denom = (abs(self.size) / self.average_price if self.size else 0.0) + amount / price
                self.average_price = total / denom
            else:
                self.average_price = (abs(self.size) * self.average_price + amount * price) / total
            self.size = _r(self.size + signed)
        else:
            closing = min(abs(self.size), amount)
            sign = 1.0 if self.size > 0 else -1.0
            if inverse:
                realized = sign * closing * (1 / self.average_price - 1 / price)
            else:
                realized = sign * closing * (price - self.average_price)
            self.size = _r(self.size + signed)
            if self.size == 0:
                self.average_price = 0.0
            elif (self.size > 0) != (sign > 0):  # flipped: the rest opens at this price
                self.average_price = price
        self.realized_pnl += realized
        return realized

    def floating(self, mark: float) -> float:
        if not self.size or not mark:
            return 0.0
        if self.instrument.inverse:
            return self.size * (1 / self.average_price - 1 / mark)
        return self.size * (mark - self.average_price)

    def as_dict(self, mark: float, index: float, funding: dict[str, Any] | None) -> dict[str, Any]:
        """The ``private/get_positions`` / ``user.changes`` position object."""
        inst = self.instrument
        size_currency = self.size / mark if inst.inverse and mark else self.size
        margin = abs(size_currency) * (0.02 if inst.kind == "future" else mark)
        d: dict[str, Any] = {
            "average_price": _r(self.average_price),
            "delta": _r(size_currency),
            "direction": "buy" if self.size > 0 else "sell" if self.size < 0 else "zero",
            "floating_profit_loss": _r(self.floating(mark)),
            "index_price": index,
            "initial_margin": _r(margin),
            "instrument_name": inst.name,
            "kind": inst.kind,
            "leverage": 50 if inst.kind == "future" else 1,
            "maintenance_margin": _r(margin * 0.75),
            "mark_price": mark,
            "open_orders_margin": 0.0,
            "realized_profit_loss": _r(self.realized_pnl),
            "settlement_price": mark,
            "size": self.size,
            "size_currency": _r(size_currency),
            "total_profit_loss": _r(self.realized_pnl + self.floating(mark)),
        }
        if funding is not None:
            d.update(funding)
        return d


@dataclass
class Account:
    """One sub-account (an API key of the emulator)."""

    client_id: str
    user_id: int
    limits: RateLimits
    balances: dict[str, float] = field(default_factory=lambda: {"BTC": 10.0, "ETH": 100.0})
    positions: dict[str, Position] = field(default_factory=dict)
    orders: dict[str, Order] = field(default_factory=dict)
    trades: list[dict[str, Any]] = field(default_factory=list)
    fees: dict[str, float] = field(default_factory=dict)
    session_rpl: dict[str, float] = field(default_factory=dict)
    #: account-scope cancel-on-disconnect: the default of every new connection
    cod: bool = False
    credits: dict[str, CreditBucket] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.credits:
            self.credits = self.limits.buckets()

    def __repr__(self) -> str:
        return f"Account(client_id={self.client_id!r}, orders={len(self.orders)}, positions={len(self.positions)})"

    def position(self, inst: Instrument) -> Position:
        pos = self.positions.get(inst.name)
        if pos is None:
            pos = self.positions[inst.name] = Position(inst)
        return pos

    def fee(self, inst: Instrument, amount: float, price: float, maker: bool) -> float:
        rate = inst.maker_commission if maker else inst.taker_commission
        if inst.inverse:
            return _r(rate * amount / price)
        return _r(min(rate * amount, 0.125 * price * amount) if rate > 0 else rate * amount)

    def book_fill(self, inst: Instrument, direction: str, amount: float, price: float, maker: bool) -> tuple[float, float]:
        """Book a fill on the position and balance; return (fee, realized P&L)."""
        fee = self.fee(inst, amount, price, maker)
        realized = self.position(inst).apply(direction, amount, price)
        cur = inst.currency
        if inst.kind == "option":  # premium changes hands
            self.balances[cur] = self.balances.get(cur, 0.0) + (-1 if direction == "buy" else 1) * amount * price
        self.balances[cur] = _r(self.balances.get(cur, 0.0) + realized - fee)
        self.fees[cur] = self.fees.get(cur, 0.0) + fee
        self.session_rpl[cur] = self.session_rpl.get(cur, 0.0) + realized
        return fee, realized

    def open_orders(self) -> list[Order]:
        return [o for o in self.orders.values() if o.is_open]
