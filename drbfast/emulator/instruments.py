"""Instrument specifications as production lists them (``public/get_instruments``), and
the order checks that follow from them (amount in contract-size multiples, price on tick).

Numbers are Deribit's for these kinds of instrument: inverse BTC contracts are 10 USD
with a 0.5 tick (perpetual) or 2.5 (dated), ETH ones 1 USD with a 0.05 tick; options are
1 coin, 0.1 BTC / 1 ETH minimum, priced in coin with a 0.0001 tick that becomes 0.0005
above 0.005 (``tick_size_steps``).
"""

from __future__ import annotations

import datetime
import math
from dataclasses import dataclass, field
from typing import Any

from .errors import RpcError, invalid

__all__ = ["Instrument", "default_instruments", "PERPETUAL_EXPIRY_MS"]

#: Production's expiration_timestamp for perpetuals (year 3000).
PERPETUAL_EXPIRY_MS = 32_503_708_800_000

#: Digits kept when prices and amounts are rounded, so 0.1 + 0.2 compares as 0.3.
DIGITS = 10


def _expiry_ms(day: int, month: int, year: int) -> int:
    # Deribit expiries are at 08:00 UTC.
    return int(datetime.datetime(year, month, day, 8, tzinfo=datetime.timezone.utc).timestamp() * 1000)


@dataclass
class Instrument:
    """One instrument's specification (and its synthetic reference price)."""

    name: str
    kind: str  # "future" | "option"
    base_currency: str
    contract_size: float
    tick_size: float
    min_trade_amount: float
    #: (above_price, tick_size) steps, options only
    tick_size_steps: list[tuple[float, float]] = field(default_factory=list)
    expiration_timestamp: int = PERPETUAL_EXPIRY_MS
    settlement_period: str = "perpetual"
    option_type: str | None = None
    strike: float | None = None
    maker_commission: float = 0.0
    taker_commission: float = 0.0005
    instrument_id: int = 0
    #: reference price the synthetic market is seeded around
    mid: float = 0.0
    creation_timestamp: int = 1_534_167_754_000

    @property
    def currency(self) -> str:
        return self.base_currency

    @property
    def index_name(self) -> str:
        return f"{self.base_currency.lower()}_usd"

    @property
    def inverse(self) -> bool:
        """Inverse futures: amounts in USD, prices in USD, P&L and fees in coin."""
        return self.kind == "future"

    @property
    def perpetual(self) -> bool:
        return self.settlement_period == "perpetual"

    @property
    def amount_step(self) -> float:
        """Amounts come in these steps: the contract size (futures), or the minimum
        amount where that is smaller (options: 1-coin contracts traded in 0.1s)."""
        return min(self.contract_size, self.min_trade_amount)

    def tick_for(self, price: float) -> float:
        """The tick that applies at ``price`` (options tick coarser above 0.005)."""
        tick = self.tick_size
        for above, step in self.tick_size_steps:
            if abs(price) > above:
                tick = step
        return tick

    def round_price(self, price: float) -> float:
        tick = self.tick_for(price)
        return round(round(price / tick) * tick, DIGITS)

    def on_tick(self, price: float) -> bool:
        tick = self.tick_for(price)
        return abs(price / tick - round(price / tick)) < 1e-6

    def check_amount(self, amount: Any, param: str = "amount") -> float:
        """Validate an order amount as production does; return it as a number."""
        if isinstance(amount, bool) or not isinstance(amount, (int, float)) or not math.isfinite(amount):
            raise invalid(param, "must be a number")
        if amount <= 0:
            raise invalid(param, "must be positive")
        step = self.amount_step
        if abs(amount / step - round(amount / step)) > 1e-6:
            raise invalid(param, "must be a multiple of contract size")
        if amount < self.min_trade_amount - 1e-12:
            raise invalid(param, f"must be at least {self.min_trade_amount:g}")
        return float(amount)

    def check_price(self, price: Any, param: str = "price") -> float:
        if isinstance(price, bool) or not isinstance(price, (int, float)) or not math.isfinite(price):
            raise invalid(param, "must be a number")
        if price <= 0:
            raise RpcError(10023, "invalid_price")
        if not self.on_tick(price):
            raise invalid(param, "must conform to tick size")
        return float(price)

    def as_dict(self) -> dict[str, Any]:
        """The ``public/get_instruments`` element."""
        d: dict[str, Any] = {
            "tick_size_steps": [{"above_price": a, "tick_size": t} for a, t in self.tick_size_steps],
            "quote_currency": self.base_currency if self.kind == "option" else "USD",
            "min_trade_amount": self.min_trade_amount,
            "expiration_timestamp": self.expiration_timestamp,
            "counter_currency": "USD",
            "settlement_currency": self.base_currency,
            "block_trade_tick_size": self.tick_size,
            "block_trade_min_trade_amount": 25 if self.kind == "option" else 200_000,
            "block_trade_commission": 0.00025 if self.kind == "future" else 0.0003,
            "settlement_period": self.settlement_period,
            "creation_timestamp": self.creation_timestamp,
            "contract_size": self.contract_size,
            "base_currency": self.base_currency,
            "instrument_id": self.instrument_id,
            "instrument_name": self.name,
            "is_active": True,
            "kind": self.kind,
            "maker_commission": self.maker_commission,
            "taker_commission": self.taker_commission,
            "price_index": self.index_name,
            "rfq": False,
            "tick_size": self.tick_size,
        }
        if self.kind == "future":
            d["instrument_type"] = "reversed"
            d["future_type"] = "reversed"
            d["max_leverage"] = 50 if self.base_currency == "BTC" else 25
            d["max_liquidation_commission"] = 0.0075
        else:
            d["option_type"] = self.option_type
            d["strike"] = self.strike
        return d


def default_instruments() -> list[Instrument]:
    """The emulator's instruments: perpetuals, a dated future and options per currency."""
    dec26 = _expiry_ms(26, 12, 2026)
    opt_steps = [(0.005, 0.0005)]
    items = [
        Instrument("BTC-PERPETUAL", "future", "BTC", 10.0, 0.5, 10.0, mid=86_750.0, maker_commission=0.0,
                   taker_commission=0.0005),
        Instrument("ETH-PERPETUAL", "future", "ETH", 1.0, 0.05, 1.0, mid=3_210.0, maker_commission=0.0,
                   taker_commission=0.0005),
        Instrument("BTC-26DEC26", "future", "BTC", 10.0, 2.5, 10.0, expiration_timestamp=dec26,
                   settlement_period="month", mid=88_100.0, maker_commission=-0.0001, taker_commission=0.0005),
        Instrument("ETH-26DEC26", "future", "ETH", 1.0, 0.05, 1.0, expiration_timestamp=dec26,
                   settlement_period="month", mid=3_260.0, maker_commission=-0.0001, taker_commission=0.0005),
        Instrument("BTC-26DEC26-100000-C", "option", "BTC", 1.0, 0.0001, 0.1, opt_steps, dec26, "month", "call",
                   100_000.0, 0.0003, 0.0003, mid=0.0415),
        Instrument("BTC-26DEC26-80000-P", "option", "BTC", 1.0, 0.0001, 0.1, opt_steps, dec26, "month", "put",
                   80_000.0, 0.0003, 0.0003, mid=0.0380),
        Instrument("BTC-26DEC26-150000-C", "option", "BTC", 1.0, 0.0001, 0.1, opt_steps, dec26, "month", "call",
                   150_000.0, 0.0003, 0.0003, mid=0.0042),
        Instrument("ETH-26DEC26-4000-C", "option", "ETH", 1.0, 0.0001, 1.0, opt_steps, dec26, "month", "call",
                   4_000.0, 0.0003, 0.0003, mid=0.0520),
    ]
    for n, inst in enumerate(items):
        inst.instrument_id = 124_000 + n
    return items
