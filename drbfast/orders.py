"""Order entry, sans I/O: request frames built from per-method templates, typed results
over Deribit's own field names, and the labels that make an order findable again.

The frame of an order is the same JSON that ``json.dumps`` would write for the same
request (tests prove it on generated orders), assembled from validated pieces with one
string join: instrument names and labels are checked once against Deribit's character
set (and escaped by ``json.dumps`` only when they need it), numbers must be finite.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Iterator
from typing import Any

from .errors import ConfigurationError

__all__ = [
    "ORDER_TYPES",
    "TIME_IN_FORCE",
    "LabelMaker",
    "Order",
    "OrderResult",
    "Trade",
    "encode_order",
    "order_params",
]

#: ``type`` values private/buy and private/sell accept.
ORDER_TYPES = frozenset({"limit", "stop_limit", "take_limit", "market", "stop_market", "take_market",
                         "market_limit", "trailing_stop"})
#: ``time_in_force`` values.
TIME_IN_FORCE = frozenset({"good_til_cancelled", "good_til_day", "fill_or_kill", "immediate_or_cancel"})
#: Deribit's longest order label.
MAX_LABEL = 64

# Instrument names are ASCII letters, digits, "-" and "_" (BTC-PERPETUAL, BTC_USDC,
# ETH-27DEC24-4000-C); labels that are plain printable ASCII need no escaping.
_NAME = re.compile(r"[A-Za-z0-9_\-]{1,64}\Z")
#: instrument names already checked (a market maker quotes the same few all day)
_known_names: set[str] = set()


def _number(name: str, value: Any) -> str:
    t = type(value)
    if t is float:
        if value - value != 0.0:  # NaN and infinities: NaN - NaN and inf - inf are NaN
            raise ConfigurationError(f"{name} must be finite, not {value!r}")
        return float.__repr__(value)
    if t is int:
        return int.__repr__(value)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigurationError(f"{name} must be a number, not {type(value).__name__}")
    return _number(name, float(value) if isinstance(value, float) else int(value))


def _string(value: str) -> str:
    # Printable ASCII without '"' or '\\' goes in as it is; anything else via json.
    if value.isascii() and value.isprintable() and '"' not in value and "\\" not in value:
        return f'"{value}"'
    return json.dumps(value, ensure_ascii=False)


def order_params(instrument_name: str, amount: float, *, price: float | None = None, type: str = "limit",
                 label: str | None = None, time_in_force: str | None = None, post_only: bool = False,
                 reduce_only: bool = False, **extra: Any) -> dict[str, Any]:
    """The ``params`` of a private/buy or private/sell, validated (what
    :func:`encode_order` writes, as a dict)."""
    if instrument_name not in _known_names:
        if not isinstance(instrument_name, str) or not _NAME.match(instrument_name):
            raise ConfigurationError(f"instrument_name {instrument_name!r} is not a Deribit instrument name")
        if len(_known_names) < 100_000:
            _known_names.add(instrument_name)
    if type not in ORDER_TYPES:
        raise ConfigurationError(f"type must be one of {sorted(ORDER_TYPES)}")
    if time_in_force is not None and time_in_force not in TIME_IN_FORCE:
        raise ConfigurationError(f"time_in_force must be one of {sorted(TIME_IN_FORCE)}")
    if label is not None and (not isinstance(label, str) or len(label) > MAX_LABEL):
        raise ConfigurationError(f"label must be a string of at most {MAX_LABEL} characters")
    _number("amount", amount)
    if price is not None:
        _number("price", price)
    elif type in ("limit", "stop_limit", "take_limit"):
        raise ConfigurationError(f"a {type} order needs a price")
    params: dict[str, Any] = {"instrument_name": instrument_name, "amount": amount, "type": type}
    if price is not None:
        params["price"] = price
    if label is not None:
        params["label"] = label
    if time_in_force is not None:
        params["time_in_force"] = time_in_force
    if post_only:
        params["post_only"] = True
    if reduce_only:
        params["reduce_only"] = True
    for key, value in extra.items():
        if value is not None:
            params[key] = value
    return params


def encode_order(req_id: int, method: str, params: dict[str, Any]) -> bytes:
    """The request frame for validated ``params`` (from :func:`order_params` or any
    flat dict of strings, numbers and booleans; nested values go through ``json``)."""
    parts = []
    for key, value in params.items():
        t = type(value)
        if t is str:
            text = _string(value)
        elif t is bool:
            text = "true" if value else "false"
        elif t is float or t is int:
            text = _number(key, value)
        else:
            text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
        parts.append(f'"{key}":{text}')
    return f'{{"jsonrpc":"2.0","id":{req_id},"method":"{method}","params":{{{",".join(parts)}}}}}'.encode()


class LabelMaker:
    """Labels the client gives orders that have none: ``drb-<6 hex>-<n>``, unique per
    client (the hex part is random per client, ``n`` counts up), so an order whose
    acknowledgement was lost can be found again with ``get_order_state_by_label``."""

    PREFIX = "drb-"

    def __init__(self, session: str | None = None) -> None:
        self.session = session or secrets.token_hex(3)
        self._n = 0

    def __call__(self) -> str:
        self._n += 1
        return f"{self.PREFIX}{self.session}-{self._n}"

    def __iter__(self) -> Iterator[str]:
        while True:
            yield self()


class _Fields:
    """A typed view over Deribit's reply dict: attributes read the dict, nothing is
    copied; ``raw`` is the dict itself."""

    __slots__ = ("raw",)

    def __init__(self, raw: dict[str, Any]) -> None:
        self.raw = raw

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Fields) and type(other) is type(self) and other.raw == self.raw

    def as_dict(self) -> dict[str, Any]:
        return self.raw


def _field(name: str) -> Any:
    return property(lambda self: self.raw.get(name), doc=f"Deribit's ``{name}``")


class Order(_Fields):
    """An order as Deribit returns it (private/buy, get_order_state, user.orders.*)."""

    __slots__ = ()
    order_id: str = _field("order_id")
    order_state: str = _field("order_state")
    order_type: str = _field("order_type")
    instrument_name: str = _field("instrument_name")
    direction: str = _field("direction")
    amount: float = _field("amount")
    filled_amount: float = _field("filled_amount")
    price: float | str = _field("price")
    average_price: float = _field("average_price")
    label: str = _field("label")
    post_only: bool = _field("post_only")
    reduce_only: bool = _field("reduce_only")
    time_in_force: str = _field("time_in_force")
    creation_timestamp: int = _field("creation_timestamp")
    last_update_timestamp: int = _field("last_update_timestamp")
    replaced: bool = _field("replaced")
    api: bool = _field("api")

    def __repr__(self) -> str:
        return (f"Order({self.order_id!r}, {self.direction} {self.amount} {self.instrument_name} @ {self.price}, "
                f"{self.order_state}, filled {self.filled_amount})")


class Trade(_Fields):
    """A fill (the ``trades`` of an order reply, user.trades.*)."""

    __slots__ = ()
    trade_id: str = _field("trade_id")
    order_id: str = _field("order_id")
    instrument_name: str = _field("instrument_name")
    direction: str = _field("direction")
    amount: float = _field("amount")
    price: float = _field("price")
    fee: float = _field("fee")
    fee_currency: str = _field("fee_currency")
    liquidity: str = _field("liquidity")
    timestamp: int = _field("timestamp")
    label: str = _field("label")

    def __repr__(self) -> str:
        return f"Trade({self.trade_id!r}, {self.direction} {self.amount} @ {self.price}, order {self.order_id!r})"


class OrderResult:
    """The reply of private/buy, sell, edit, close_position: ``order`` and ``trades``."""

    __slots__ = ("order", "trades", "raw")

    def __init__(self, raw: dict[str, Any]) -> None:
        self.raw = raw
        self.order = Order(raw["order"])
        self.trades = [Trade(t) for t in raw.get("trades") or ()]

    def __repr__(self) -> str:
        return f"OrderResult({self.order!r}, trades={len(self.trades)})"
