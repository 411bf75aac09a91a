"""Channel names: which ones the emulator serves and what each needs (PROTOCOL.md 4).

A name that is unknown, names an unknown instrument, or has a bad interval, group or
depth is not an error in production: it is just missing from the subscribe result
(PROTOCOL.md 4.3). :func:`parse_channel` returns None for those.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from .instruments import Instrument

__all__ = ["Channel", "parse_channel", "INTERVALS", "UNSERVED"]

#: Intervals a channel may name; ``raw`` needs an authenticated connection.
INTERVALS = ("raw", "100ms", "agg2")
KINDS = ("future", "option", "spot", "future_combo", "option_combo", "any")
CURRENCIES = ("BTC", "ETH", "USDC", "USDT", "any")
INDICES = ("btc_usd", "eth_usd")
#: Grouping steps of book.{instrument}.{group}.{depth}.{interval} (OLD #book-...-group-depth-interval).
GROUPS = {"BTC": ("none", "1", "2", "5", "10"), "ETH": ("none", "5", "10", "25", "100", "250")}
DEPTHS = ("1", "10", "20")
#: Documented families the emulator acknowledges but whose events never happen here.
QUIET = ("announcements", "user.lock", "user.access_log", "instrument.state", "user.mmp_trigger")
#: Documented families not modelled: left out of the subscribe result, as production
#: does with any channel it does not grant.
UNSERVED = ("chart.trades", "block_rfq", "block_trade_confirmations", "user.block_rfq", "user.block_trade",
            "estimated_expiration_price", "deribit_volatility_index")


@dataclass(frozen=True)
class Channel:
    """A served channel: ``family`` is its name up to the first variable part."""

    name: str
    family: str
    instrument: Instrument | None = None
    interval: str | None = None
    currency: str | None = None  # for kind/currency and index channels
    kind: str | None = None
    group: str | None = None
    depth: int | None = None
    private: bool = False

    @property
    def needs_auth_for_raw(self) -> bool:
        return self.interval == "raw" and not self.private

    def matches(self, inst: Instrument) -> bool:
        """Does an event of ``inst`` belong to this (instrument or kind/currency) channel?"""
        if self.instrument is not None:
            return self.instrument is inst
        return (self.kind in (None, "any", inst.kind)) and (self.currency in (None, "any", inst.currency))


def parse_channel(name: str, instruments: Mapping[str, Instrument]) -> Channel | None:
    """The served channel ``name`` stands for, or None if it would not be granted."""
    if name in ("platform_state", "platform_state.public_methods_state"):
        return Channel(name, name)
    if name in ("announcements", "user.lock", "user.access_log"):
        return Channel(name, name, private=name.startswith("user."))
    parts = name.split(".")
    head = parts[0]
    if head in ("book", "ticker", "trades", "incremental_ticker", "quote", "perpetual"):
        inst = instruments.get(parts[1]) if len(parts) > 1 else None
        if head == "trades" and len(parts) == 4 and parts[1] in KINDS and parts[2] in CURRENCIES and parts[3] in INTERVALS:
            return Channel(name, "trades", kind=parts[1], currency=parts[2], interval=parts[3])
        if inst is None:
            return None
        if head in ("incremental_ticker", "quote"):
            return Channel(name, head, inst) if len(parts) == 2 else None
        if head == "book" and len(parts) == 5:
            group, depth, interval = parts[2], parts[3], parts[4]
            if group not in GROUPS.get(inst.currency, ("none",)) or depth not in DEPTHS or interval not in ("100ms", "agg2"):
                return None
            return Channel(name, "book.grouped", inst, interval, group=group, depth=int(depth))
        if len(parts) != 3 or parts[2] not in INTERVALS:
            return None
        if head == "perpetual" and not inst.perpetual:
            return None
        return Channel(name, head, inst, parts[2])
    if head in ("deribit_price_index", "deribit_price_ranking") and len(parts) == 2 and parts[1] in INDICES:
        return Channel(name, head, currency=parts[1].split("_")[0].upper())
    if head == "markprice" and len(parts) == 3 and parts[1] == "options" and parts[2] in INDICES:
        return Channel(name, "markprice.options", currency=parts[2].split("_")[0].upper())
    if head == "instrument" and len(parts) == 4 and parts[1] == "state" and parts[2] in KINDS and parts[3] in CURRENCIES:
        return Channel(name, "instrument.state", kind=parts[2], currency=parts[3])
    if head == "user" and len(parts) >= 3:
        sub = parts[1]
        if sub == "portfolio" and len(parts) == 3 and parts[2].upper() in CURRENCIES + ("ANY",):
            cur = parts[2].upper()
            return Channel(name, "user.portfolio", currency="any" if cur == "ANY" else cur, private=True)
        if sub == "mmp_trigger" and len(parts) == 3 and parts[2] in INDICES:
            return Channel(name, "user.mmp_trigger", private=True)
        if sub in ("orders", "trades", "changes"):
            family = f"user.{sub}"
            if len(parts) == 4 and parts[3] in INTERVALS:
                inst = instruments.get(parts[2])
                return Channel(name, family, inst, parts[3], private=True) if inst is not None else None
            if len(parts) == 5 and parts[2] in KINDS and parts[3] in CURRENCIES and parts[4] in INTERVALS:
                return Channel(name, family, interval=parts[4], kind=parts[2], currency=parts[3], private=True)
    return None
