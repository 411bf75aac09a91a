"""The typed order and account calls of :class:`drbfast.Client`, and the
:class:`OrderHandle` of an order sent with ``place``.

Each wrapper is one shape: build the params, ``call`` the method, check the result's
type (a :class:`~drbfast.errors.MalformedReply` otherwise) and wrap it
(:class:`~drbfast.orders.Order`, :class:`~drbfast.orders.OrderResult`, a count). The
mixin needs only the client's public ``call``, ``place`` and ``authenticated``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Generator
from typing import TYPE_CHECKING, Any, Literal

from .errors import ConfigurationError, MalformedReply
from .orders import Order, OrderResult

__all__ = ["OrderHandle", "TradingMixin"]

log = logging.getLogger("drbfast.client")


class OrderHandle:
    """An order sent with :meth:`Client.place` (fire and forget), or behind
    :meth:`Client.buy`/:meth:`Client.sell`.

    ``await handle`` gives the :class:`OrderResult` or raises what the order met (a
    :class:`DeribitError` rejection, :class:`ConnectionLost`, :class:`RequestTimeout`).
    When the acknowledgement was lost (``uncertain``), ``await handle.reconciled()``
    waits until the client has looked the order up after reconnecting and says what
    happened: ``"placed"`` (``handle.order`` is what the exchange has), ``"rejected"``,
    ``"not_found"`` (it never reached the book) or ``"unknown"`` (the lookups kept
    failing, or the client closed first)."""

    def __init__(self, method: str, params: dict[str, Any], on_ack: Callable[[OrderHandle], object] | None) -> None:
        loop = asyncio.get_running_loop()
        self.method = method
        self.params = params
        self.label: str = params["label"]
        self.sent = False
        self.uncertain = False
        self.outcome: str | None = None
        self.order: Order | None = None
        self._on_ack = on_ack
        self._result: asyncio.Future[OrderResult] = loop.create_future()
        self._reconciled: asyncio.Future[str] = loop.create_future()

    def __repr__(self) -> str:
        state = "done" if self._result.done() else "sent" if self.sent else "queued"
        return f"OrderHandle({self.method} {self.params['instrument_name']} label={self.label!r}, {state})"

    def __await__(self) -> Generator[Any, None, OrderResult]:
        return asyncio.shield(self._result).__await__()

    def done(self) -> bool:
        return self._result.done()

    async def result(self) -> OrderResult:
        """The :class:`OrderResult` (as ``await handle``, not shielded: for the one
        caller that owns the handle)."""
        return await self._result

    def _resolve(self, result: OrderResult) -> None:
        if not self._result.done():
            self.order = result.order
            self._result.set_result(result)
            self._acked()

    def _fail(self, exc: BaseException) -> None:
        if not self._result.done():
            self._result.set_exception(exc)
            self._result.exception()  # retrieved: a fire-and-forget caller may never await it
            self._acked()

    def _acked(self) -> None:
        if self._on_ack is not None:
            try:
                self._on_ack(self)
            except Exception:
                log.exception("drbfast: on_ack callback raised")

    def _settle(self, outcome: str, order: Order | None) -> None:
        self.outcome = outcome
        if order is not None:
            self.order = order
        if not self._reconciled.done():
            self._reconciled.set_result(outcome)

    async def reconciled(self, timeout: float | None = None) -> str:
        """What became of an order whose acknowledgement was lost (see the class)."""
        return await asyncio.wait_for(asyncio.shield(self._reconciled), timeout)


def order_result(method: str, result: Any) -> OrderResult:
    if not isinstance(result, dict) or not isinstance(result.get("order"), dict):
        raise MalformedReply(method, result)
    return OrderResult(result)


def _orders(method: str, result: Any) -> list[Order]:
    if not isinstance(result, list) or not all(isinstance(o, dict) for o in result):
        raise MalformedReply(method, result)
    return [Order(o) for o in result]


def _count(method: str, result: Any) -> int:
    if isinstance(result, bool) or not isinstance(result, int):
        raise MalformedReply(method, result)
    return result


class TradingMixin:
    """Typed order and account calls over ``call`` and ``place``."""

    if TYPE_CHECKING:  # what the client provides
        async def call(self, method: str, /, **params: Any) -> Any: ...

        def place(self, side: Literal["buy", "sell"], instrument_name: str, amount: float, *,
                  price: float | None = None, type: str = "limit", post_only: bool = False,
                  reduce_only: bool = False, time_in_force: str | None = None, label: str | None = None,
                  on_ack: Callable[[OrderHandle], object] | None = None, **extra: Any) -> OrderHandle: ...

        @property
        def authenticated(self) -> bool: ...

    async def buy(self, instrument_name: str, amount: float, *, price: float | None = None, type: str = "limit",
                  post_only: bool = False, reduce_only: bool = False, time_in_force: str | None = None,
                  label: str | None = None, **extra: Any) -> OrderResult:
        """``private/buy``; returns the :class:`OrderResult` (``order``, ``trades``).

        Every order carries a label (``label`` or one made by the client, see
        :attr:`OrderHandle.label`) so that one whose acknowledgement is lost can be found
        again: the call then raises :class:`ConnectionLost` (or :class:`RequestTimeout`)
        and, once the session is back, the client looks the label up and emits an
        ``order_reconciled`` event saying what became of it. Other Deribit parameters
        (``max_show``, ``trigger``, ``trigger_price``, ``advanced``, ``mmp``,
        ``valid_until``, ...) pass through ``extra``. Charged to the matching-engine pool."""
        handle = self.place("buy", instrument_name, amount, price=price, type=type, post_only=post_only,
                            reduce_only=reduce_only, time_in_force=time_in_force, label=label, **extra)
        return await handle.result()

    async def sell(self, instrument_name: str, amount: float, *, price: float | None = None, type: str = "limit",
                   post_only: bool = False, reduce_only: bool = False, time_in_force: str | None = None,
                   label: str | None = None, **extra: Any) -> OrderResult:
        """``private/sell``: as :meth:`buy`."""
        handle = self.place("sell", instrument_name, amount, price=price, type=type, post_only=post_only,
                            reduce_only=reduce_only, time_in_force=time_in_force, label=label, **extra)
        return await handle.result()

    async def _order_call(self, method: str, params: dict[str, Any]) -> Any:
        if not self.authenticated:
            raise ConfigurationError("orders need credentials: connect with client_id and client_secret")
        return await self.call(method, **{k: v for k, v in params.items() if v is not None})

    async def edit(self, order_id: str, amount: float, *, price: float | None = None, post_only: bool | None = None,
                   reduce_only: bool | None = None, **extra: Any) -> OrderResult:
        """``private/edit``: new amount (and price, ...) of an open order."""
        return order_result("private/edit", await self._order_call(
            "private/edit", {"order_id": order_id, "amount": amount, "price": price, "post_only": post_only,
                             "reduce_only": reduce_only, **extra}))

    async def edit_by_label(self, label: str, instrument_name: str, amount: float, *, price: float | None = None,
                            **extra: Any) -> OrderResult:
        """``private/edit_by_label``: edit the one open order with ``label``."""
        return order_result("private/edit_by_label", await self._order_call(
            "private/edit_by_label", {"label": label, "instrument_name": instrument_name, "amount": amount,
                                      "price": price, **extra}))

    async def cancel(self, order_id: str) -> Order:
        """``private/cancel``: returns the cancelled order."""
        result = await self._order_call("private/cancel", {"order_id": order_id})
        if not isinstance(result, dict):
            raise MalformedReply("private/cancel", result)
        return Order(result)

    async def cancel_all(self, **params: Any) -> int:
        """``private/cancel_all``: how many orders were cancelled."""
        return _count("private/cancel_all", await self._order_call("private/cancel_all", params))

    async def cancel_all_by_instrument(self, instrument_name: str, **params: Any) -> int:
        """``private/cancel_all_by_instrument``: how many orders were cancelled."""
        return _count("private/cancel_all_by_instrument", await self._order_call(
            "private/cancel_all_by_instrument", {"instrument_name": instrument_name, **params}))

    async def cancel_all_by_currency(self, currency: str, **params: Any) -> int:
        """``private/cancel_all_by_currency``: how many orders were cancelled."""
        return _count("private/cancel_all_by_currency", await self._order_call(
            "private/cancel_all_by_currency", {"currency": currency, **params}))

    async def cancel_by_label(self, label: str, **params: Any) -> int:
        """``private/cancel_by_label``: how many orders were cancelled."""
        return _count("private/cancel_by_label", await self._order_call("private/cancel_by_label", {"label": label, **params}))

    async def close_position(self, instrument_name: str, type: str = "market", price: float | None = None) -> OrderResult:
        """``private/close_position``."""
        return order_result("private/close_position", await self._order_call(
            "private/close_position", {"instrument_name": instrument_name, "type": type, "price": price}))

    async def get_open_orders(self, **params: Any) -> list[Order]:
        """``private/get_open_orders`` (``kind``, ``type``)."""
        return _orders("private/get_open_orders", await self._order_call("private/get_open_orders", params))

    async def get_open_orders_by_instrument(self, instrument_name: str, **params: Any) -> list[Order]:
        """``private/get_open_orders_by_instrument``."""
        return _orders("private/get_open_orders_by_instrument", await self._order_call(
            "private/get_open_orders_by_instrument", {"instrument_name": instrument_name, **params}))

    async def get_open_orders_by_currency(self, currency: str, **params: Any) -> list[Order]:
        """``private/get_open_orders_by_currency``."""
        return _orders("private/get_open_orders_by_currency", await self._order_call(
            "private/get_open_orders_by_currency", {"currency": currency, **params}))

    async def get_order_state(self, order_id: str) -> Order:
        """``private/get_order_state``."""
        result = await self._order_call("private/get_order_state", {"order_id": order_id})
        if not isinstance(result, dict):
            raise MalformedReply("private/get_order_state", result)
        return Order(result)

    async def get_order_state_by_label(self, currency: str, label: str) -> list[Order]:
        """``private/get_order_state_by_label``."""
        return _orders("private/get_order_state_by_label", await self._order_call(
            "private/get_order_state_by_label", {"currency": currency, "label": label}))

    async def mass_quote(self, quotes: list[dict[str, Any]], **params: Any) -> Any:
        """``private/mass_quote`` (market makers with the permission): the raw result."""
        return await self._order_call("private/mass_quote", {"quotes": quotes, **params})

    async def cancel_quotes(self, cancel_type: str = "all", **params: Any) -> int:
        """``private/cancel_quotes``: how many quotes were cancelled."""
        return _count("private/cancel_quotes", await self._order_call("private/cancel_quotes", {"cancel_type": cancel_type, **params}))
