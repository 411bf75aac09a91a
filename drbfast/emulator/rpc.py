"""JSON-RPC method handlers of the emulator: one function per Deribit method.

A handler takes the connection and the request's ``params`` and returns the ``result``
or raises :class:`RpcError` with Deribit's code, message and data (PROTOCOL.md 8). What
must happen after the response is sent (a book snapshot, a close) is queued on the
connection with ``conn.after_response``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .errors import RpcError
from .market import INTERVALS, parse_channel

if TYPE_CHECKING:
    from .server import Connection

__all__ = ["HANDLERS", "NO_RESPONSE", "RpcError"]


#: Returned by a handler that sends no response at all (private/logout).
NO_RESPONSE = object()


#: Largest heartbeat interval accepted (one day): none is documented, but a timer needs one.
MAX_HEARTBEAT = 86_400


def invalid(param: str, reason: str) -> RpcError:
    return RpcError(-32602, "Invalid params", {"reason": reason, "param": param})


def _now_ms() -> int:
    return int(time.time() * 1000)


# ------------------------------------------------------------------ public


def hello(conn: Connection, params: dict[str, Any]) -> Any:
    for name in ("client_name", "client_version"):
        if not isinstance(params.get(name), str):
            raise invalid(name, "value required")
    conn.client_name = params["client_name"]
    return {"version": conn.emu.config.version}


def test(conn: Connection, params: dict[str, Any]) -> Any:
    if params.get("expected_result") == "exception":
        raise RpcError(11094, "internal_server_error")
    return {"version": conn.emu.config.version}


def get_time(conn: Connection, params: dict[str, Any]) -> Any:
    return _now_ms()


def status(conn: Connection, params: dict[str, Any]) -> Any:
    return {"locked": "false", "locked_indices": []}


def set_heartbeat(conn: Connection, params: dict[str, Any]) -> Any:
    interval = params.get("interval")
    if interval is None:
        raise invalid("interval", "value required")
    if isinstance(interval, bool) or not isinstance(interval, (int, float)):
        raise invalid("interval", "must be a number")
    minimum = conn.emu.config.min_heartbeat
    if interval != interval or interval < minimum:  # NaN compares false to everything
        raise invalid("interval", f"must be at least {minimum:g}")
    if interval > MAX_HEARTBEAT:
        # No maximum is documented; a timer needs a finite, representable delay.
        raise invalid("interval", f"must be at most {MAX_HEARTBEAT}")
    conn.start_heartbeat(float(interval))
    return "ok"


def disable_heartbeat(conn: Connection, params: dict[str, Any]) -> Any:
    conn.stop_heartbeat()
    return "ok"


def auth(conn: Connection, params: dict[str, Any]) -> Any:
    emu = conn.emu
    token = emu.exchange.authenticate(params, time.time(), conn.id)
    conn.on_authenticated(token)
    result: dict[str, Any] = {
        "enabled_features": [],
        "access_token": token.access_token,
        "expires_in": int(emu.config.token_ttl),
        "refresh_token": token.refresh_token,
        "scope": token.scope,
        "token_type": "bearer",
    }
    if "state" in params:
        result["state"] = params["state"]
    return result


def _channels(params: dict[str, Any]) -> list[str]:
    channels = params.get("channels")
    if channels is None:
        raise invalid("channels", "value required")
    if not isinstance(channels, list) or not all(isinstance(c, str) for c in channels):
        raise invalid("channels", "value must be a list")
    return channels


def _subscribe(conn: Connection, params: dict[str, Any], private: bool) -> Any:
    channels = _channels(params)
    market = conn.emu.market
    accepted: list[str] = []
    for channel in channels:
        kind, instrument, interval = parse_channel(channel)
        if not kind:
            continue  # unknown channel: not an error, just missing from the result
        if kind == "user.orders" and not private:
            continue
        if instrument is not None and instrument not in market.instruments:
            continue
        if kind in ("book", "ticker", "trades") and interval not in INTERVALS:
            continue
        if interval == "raw" and kind != "user.orders" and conn.client_id is None:
            raise RpcError(13778, "raw_subscriptions_not_available_for_unauthorized")
        accepted.append(channel)
    # The live ack may come back in another order than asked (PROTOCOL.md 4.3).
    accepted = sorted(set(accepted), key=accepted.index)
    for channel in accepted:
        conn.emu.add_subscription(conn, channel)
    return accepted


def subscribe(conn: Connection, params: dict[str, Any]) -> Any:
    return _subscribe(conn, params, private=False)


def private_subscribe(conn: Connection, params: dict[str, Any]) -> Any:
    return _subscribe(conn, params, private=True)


def unsubscribe(conn: Connection, params: dict[str, Any]) -> Any:
    return [c for c in _channels(params) if conn.emu.remove_subscription(conn, c)]


def unsubscribe_all(conn: Connection, params: dict[str, Any]) -> Any:
    for channel in list(conn.subscriptions):
        conn.emu.remove_subscription(conn, channel)
    return "ok"


# ------------------------------------------------------------------ private


def logout(conn: Connection, params: dict[str, Any]) -> Any:
    # No response; the socket closes gracefully and cancel-on-disconnect is not
    # triggered (PROTOCOL.md 5.4; Coinbase closes with 1000 "logout").
    conn.logged_out = True
    if params.get("invalidate_token", True):
        conn.emu.exchange.revoke_connection(conn.id)
    conn.after_response(lambda: conn.close(1000, "logout"))
    return NO_RESPONSE


def _order(conn: Connection, params: dict[str, Any], direction: str) -> Any:
    name = params.get("instrument_name")
    if not isinstance(name, str):
        raise invalid("instrument_name", "value required")
    if name not in conn.emu.market.instruments:
        raise RpcError(10020, "invalid_or_unsupported_instrument")
    amount = params.get("amount")
    if isinstance(amount, bool) or not isinstance(amount, (int, float)) or amount <= 0:
        raise invalid("amount", "must be a positive number")
    kind = params.get("type", "limit")
    if kind not in ("limit", "market"):
        raise invalid("type", "must be limit or market")
    if kind == "limit":
        price = params.get("price")
        if isinstance(price, bool) or not isinstance(price, (int, float)) or price <= 0:
            raise invalid("price", "value required")
    assert conn.client_id is not None
    order = conn.emu.exchange.place(conn.client_id, conn.id, direction, params, _now_ms())
    conn.emu.order_event(order)
    return {"order": order.as_dict(), "trades": []}


def buy(conn: Connection, params: dict[str, Any]) -> Any:
    return _order(conn, params, "buy")


def sell(conn: Connection, params: dict[str, Any]) -> Any:
    return _order(conn, params, "sell")


def cancel(conn: Connection, params: dict[str, Any]) -> Any:
    order_id = params.get("order_id")
    if not isinstance(order_id, str):
        raise invalid("order_id", "value required")
    assert conn.client_id is not None
    order = conn.emu.exchange.cancel(conn.client_id, order_id, _now_ms())
    if order is None:
        raise RpcError(10004, "order_not_found")
    conn.emu.order_event(order)
    return order.as_dict()


def cancel_all(conn: Connection, params: dict[str, Any]) -> Any:
    assert conn.client_id is not None
    done = conn.emu.exchange.cancel_where(_now_ms(), client_id=conn.client_id)
    for order in done:
        conn.emu.order_event(order)
    return len(done)


def get_open_orders_by_instrument(conn: Connection, params: dict[str, Any]) -> Any:
    name = params.get("instrument_name")
    if not isinstance(name, str):
        raise invalid("instrument_name", "value required")
    assert conn.client_id is not None
    return [o.as_dict() for o in conn.emu.exchange.open_orders(conn.client_id, name)]


def _cod_scope(params: dict[str, Any]) -> str:
    scope = params.get("scope", "connection")
    if scope not in ("connection", "account"):
        raise invalid("scope", "must be connection or account")
    return str(scope)


def _set_cod(conn: Connection, params: dict[str, Any], enabled: bool) -> Any:
    # Account scope sets the default for new connections; the calling connection
    # follows too (PROTOCOL.md 6 leaves that open; this is the emulator's choice).
    if _cod_scope(params) == "account":
        assert conn.client_id is not None
        conn.emu.exchange.cod_account[conn.client_id] = enabled
    conn.cod = enabled
    return "ok"


def enable_cancel_on_disconnect(conn: Connection, params: dict[str, Any]) -> Any:
    return _set_cod(conn, params, True)


def disable_cancel_on_disconnect(conn: Connection, params: dict[str, Any]) -> Any:
    return _set_cod(conn, params, False)


def get_cancel_on_disconnect(conn: Connection, params: dict[str, Any]) -> Any:
    scope = _cod_scope(params)
    if scope == "account":
        assert conn.client_id is not None
        return {"scope": "account", "enabled": conn.emu.exchange.cod_account.get(conn.client_id, False)}
    return {"scope": "connection", "enabled": conn.cod}


Handler = Callable[["Connection", dict[str, Any]], Any]

#: Every method the emulator serves. ``private/*`` ones need an authenticated
#: connection or a valid ``access_token`` parameter.
HANDLERS: dict[str, Handler] = {
    "public/hello": hello,
    "public/test": test,
    "public/get_time": get_time,
    "public/status": status,
    "public/set_heartbeat": set_heartbeat,
    "public/disable_heartbeat": disable_heartbeat,
    "public/auth": auth,
    "public/subscribe": subscribe,
    "public/unsubscribe": unsubscribe,
    "public/unsubscribe_all": unsubscribe_all,
    "private/subscribe": private_subscribe,
    "private/unsubscribe": unsubscribe,
    "private/unsubscribe_all": unsubscribe_all,
    "private/logout": logout,
    "private/buy": buy,
    "private/sell": sell,
    "private/cancel": cancel,
    "private/cancel_all": cancel_all,
    "private/get_open_orders_by_instrument": get_open_orders_by_instrument,
    "private/enable_cancel_on_disconnect": enable_cancel_on_disconnect,
    "private/disable_cancel_on_disconnect": disable_cancel_on_disconnect,
    "private/get_cancel_on_disconnect": get_cancel_on_disconnect,
}
