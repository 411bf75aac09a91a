"""JSON-RPC method handlers: one function per Deribit method, each taking a
:class:`~drbfast.emulator.context.Context` and the request's ``params`` and returning
the ``result`` (or raising :class:`RpcError` with Deribit's code, message and data,
PROTOCOL.md 8). :data:`METHODS` says, per method, which credit pool it draws from
(PROTOCOL.md 9), which token scope it needs (5.3) and whether it is WebSocket-only.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .book import Order
from .channels import parse_channel
from .context import Context
from .errors import RpcError, invalid
from .instruments import Instrument

__all__ = ["HANDLERS", "METHODS", "Method", "NO_RESPONSE", "RpcError"]


#: Returned by a handler that sends no response at all (private/logout).
NO_RESPONSE = object()

#: Largest heartbeat interval accepted (one day): none is documented, but a timer needs one.
MAX_HEARTBEAT = 86_400
#: public/get_order_book depths (NEW method page); 10000 is "everything".
BOOK_DEPTHS = (1, 5, 10, 20, 50, 100, 1000, 10000)


def _str(params: dict[str, Any], name: str, required: bool = True, default: str | None = None) -> str | None:
    value = params.get(name)
    if value is None:
        if required:
            raise invalid(name, "value required")
        return default
    if not isinstance(value, str):
        raise invalid(name, "must be a string")
    return value


def _bool(params: dict[str, Any], name: str, default: bool = False) -> bool:
    value = params.get(name, default)
    if not isinstance(value, bool):
        raise invalid(name, "must be a boolean")
    return value


def _int(params: dict[str, Any], name: str, default: int, lo: int, hi: int) -> int:
    value = params.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise invalid(name, f"must be an integer from {lo} to {hi}")
    return value


def _currency(ctx: Context, params: dict[str, Any], allow_any: bool = False) -> str:
    cur = _str(params, "currency")
    assert cur is not None
    known = {i.currency for i in ctx.exchange.instruments.values()}
    if cur == "any" and allow_any:
        return cur
    if cur not in known:
        raise invalid("currency", "wrong format")
    return cur


def _kind(params: dict[str, Any]) -> str | None:
    kind = params.get("kind")
    if kind is None or kind == "any":
        return None
    if kind not in ("future", "option", "spot", "future_combo", "option_combo"):
        raise invalid("kind", "wrong format")
    return str(kind)


# ------------------------------------------------------------------ session


def hello(ctx: Context, params: dict[str, Any]) -> Any:
    for name in ("client_name", "client_version"):
        _str(params, name)
    ctx.session.client_name = params["client_name"]
    return {"version": ctx.config.version}


def test(ctx: Context, params: dict[str, Any]) -> Any:
    if params.get("expected_result") == "exception":
        raise RpcError(11094, "internal_server_error")
    return {"version": ctx.config.version}


def get_time(ctx: Context, params: dict[str, Any]) -> Any:
    return ctx.now_ms


def status(ctx: Context, params: dict[str, Any]) -> Any:
    # OLD's field table (the example shows another list name; PROTOCOL.md 7).
    return {"locked": False, "locked_indices": []}


def set_heartbeat(ctx: Context, params: dict[str, Any]) -> Any:
    interval = params.get("interval")
    if interval is None:
        raise invalid("interval", "value required")
    if isinstance(interval, bool) or not isinstance(interval, (int, float)):
        raise invalid("interval", "must be a number")
    minimum = ctx.config.min_heartbeat
    if interval != interval or interval < minimum:  # NaN compares false to everything
        raise invalid("interval", f"must be at least {minimum:g}")
    if interval > MAX_HEARTBEAT:
        raise invalid("interval", f"must be at most {MAX_HEARTBEAT}")
    ctx.session.start_heartbeat(float(interval))
    return "ok"


def disable_heartbeat(ctx: Context, params: dict[str, Any]) -> Any:
    ctx.session.stop_heartbeat()
    return "ok"


def _token_result(ctx: Context, token: Any, params: dict[str, Any]) -> dict[str, Any]:
    # The live reply's key order (auth_response_live_2025.json).
    result: dict[str, Any] = {
        "enabled_features": [],
        "access_token": token.access_token,
        "expires_in": max(1, round(token.expires_at - ctx.now)),
        "refresh_token": token.refresh_token,
        "scope": token.scope,
        "token_type": "bearer",
    }
    if "state" in params:
        result["state"] = params["state"]
    return result


def auth(ctx: Context, params: dict[str, Any]) -> Any:
    # Over HTTP there is no connection to bind a token to: it works on later requests.
    token = ctx.exchange.authenticate(params, ctx.now, ctx.session.id)
    if ctx.http:
        token.connection = None
    ctx.session.on_authenticated(token)
    return _token_result(ctx, token, params)


def fork_token(ctx: Context, params: dict[str, Any]) -> Any:
    """A token set for a new named session from a session-scoped refresh token."""
    name = _str(params, "session_name")
    old = ctx.exchange.refresh_tokens.get(str(params.get("refresh_token")))
    if old is None:
        raise RpcError(13009, "unauthorized", {"reason": "invalid_token", "param": "refresh_token"})
    if old.session is None:
        raise RpcError(13009, "unauthorized", {"reason": "session scope required", "param": "refresh_token"})
    token = ctx.exchange.issue(old.client_id, ctx.now, None, dict(old.access), name, [])
    return _token_result(ctx, token, params)


def exchange_token(ctx: Context, params: dict[str, Any]) -> Any:
    """A token set for another sub-account (``subject_id`` is its user_id)."""
    old = ctx.exchange.refresh_tokens.get(str(params.get("refresh_token")))
    if old is None:
        raise RpcError(13009, "unauthorized", {"reason": "invalid_token", "param": "refresh_token"})
    subject = params.get("subject_id")
    if isinstance(subject, bool) or not isinstance(subject, int):
        raise invalid("subject_id", "value required" if subject is None else "must be an integer")
    target = next((a for a in ctx.exchange.accounts.values() if a.user_id == subject), None)
    if target is None:
        raise RpcError(13020, "not_found")
    token = ctx.exchange.issue(target.client_id, ctx.now, old.connection, dict(old.access), old.session, [])
    return _token_result(ctx, token, params)


def _channels(params: dict[str, Any]) -> list[str]:
    channels = params.get("channels")
    if channels is None:
        raise invalid("channels", "value required")
    if not isinstance(channels, list) or not all(isinstance(c, str) for c in channels):
        raise invalid("channels", "value must be a list")
    return channels


def _subscribe(ctx: Context, params: dict[str, Any], private: bool) -> Any:
    names = _channels(params)
    if ctx.http:
        raise RpcError(10030, "must_be_websocket_request")
    label = params.get("label") if private else None
    if label is not None and (not isinstance(label, str) or len(label) > 16):
        raise invalid("label", "must be a string of at most 16 characters")
    token = ctx.session.token
    accepted: list[str] = []
    for name in names:
        if ctx.config.gateway and len(accepted) >= ctx.config.gateway_max_channels:
            break  # Coinbase's gateway keeps the first 32 and drops the rest, silently
        channel = parse_channel(name, ctx.exchange.instruments)
        if channel is None:
            continue  # not an error, just missing from the result (PROTOCOL.md 4.3)
        if channel.private:
            if not private or token is None:
                continue
            area = "account" if channel.family in ("user.portfolio", "user.lock", "user.access_log") else "trade"
            if not token.allows(area, "read"):
                continue  # a scope the token lacks: not granted
        if channel.needs_auth_for_raw and ctx.session.client_id is None:
            raise RpcError(13778, "raw_subscriptions_not_available_for_unauthorized")
        if name not in accepted:
            accepted.append(name)
            first = ctx.hub.subscribe(ctx.session, channel, label)
            if first is not None:
                ctx.after_response(first)
    return accepted


def subscribe(ctx: Context, params: dict[str, Any]) -> Any:
    return _subscribe(ctx, params, private=False)


def private_subscribe(ctx: Context, params: dict[str, Any]) -> Any:
    return _subscribe(ctx, params, private=True)


def unsubscribe(ctx: Context, params: dict[str, Any]) -> Any:
    return [c for c in _channels(params) if ctx.hub.unsubscribe(ctx.session, c)]


def unsubscribe_all(ctx: Context, params: dict[str, Any]) -> Any:
    for channel in list(ctx.session.subscriptions):
        ctx.hub.unsubscribe(ctx.session, channel)
    return "ok"


def logout(ctx: Context, params: dict[str, Any]) -> Any:
    # No response; the socket closes gracefully and cancel-on-disconnect is not
    # triggered (PROTOCOL.md 5.4; Coinbase closes with 1000 "logout").
    session = ctx.session
    session.logged_out = True
    if _bool(params, "invalidate_token", True):
        ctx.exchange.revoke_connection(session.id)
    ctx.after_response(lambda: session.close(1000, "logout"))
    return NO_RESPONSE


def _cod_scope(params: dict[str, Any]) -> str:
    scope = params.get("scope", "connection")
    if scope not in ("connection", "account"):
        raise invalid("scope", "must be connection or account")
    return str(scope)


def _set_cod(ctx: Context, params: dict[str, Any], enabled: bool) -> Any:
    # Account scope sets the default for new connections; the calling connection
    # follows too (PROTOCOL.md 6 leaves that open; this is the emulator's choice).
    scope = _cod_scope(params)
    if scope == "connection" and ctx.http:
        raise invalid("scope", "connection scope is only available over WebSocket")
    if scope == "account":
        ctx.exchange.account(ctx.client_id).cod = enabled
    ctx.session.cod = enabled
    return "ok"


def enable_cancel_on_disconnect(ctx: Context, params: dict[str, Any]) -> Any:
    return _set_cod(ctx, params, True)


def disable_cancel_on_disconnect(ctx: Context, params: dict[str, Any]) -> Any:
    return _set_cod(ctx, params, False)


def get_cancel_on_disconnect(ctx: Context, params: dict[str, Any]) -> Any:
    if _cod_scope(params) == "account":
        return {"scope": "account", "enabled": ctx.exchange.account(ctx.client_id).cod}
    return {"scope": "connection", "enabled": ctx.session.cod}


# ------------------------------------------------------------------ market data


def get_currencies(ctx: Context, params: dict[str, Any]) -> Any:
    out = []
    for cur in sorted({i.currency for i in ctx.exchange.instruments.values()}):
        out.append({"withdrawal_priorities": [], "withdrawal_fee": 0.0001 if cur == "BTC" else 0.0015,
                    "min_withdrawal_fee": 0.0001 if cur == "BTC" else 0.0015, "min_confirmations": 1,
                    "currency_long": {"BTC": "Bitcoin", "ETH": "Ethereum"}.get(cur, cur),
                    "currency": cur, "coin_type": {"BTC": "BITCOIN", "ETH": "ETHER"}.get(cur, cur), "apr": 0.0, "fee_precision": 4})
    return out


def get_instruments(ctx: Context, params: dict[str, Any]) -> Any:
    # No currency means all of them: ccxt's load_markets asks that way of production.
    cur = _currency(ctx, params, allow_any=True) if params.get("currency") is not None else "any"
    kind = _kind(params)
    if _bool(params, "expired"):
        return []  # nothing has expired in the emulator yet
    return [i.as_dict() for i in ctx.exchange.instruments.values()
            if (cur == "any" or i.currency == cur) and (kind is None or i.kind == kind)]


def get_instrument(ctx: Context, params: dict[str, Any]) -> Any:
    return ctx.exchange.instrument(params.get("instrument_name")).as_dict()


def ticker(ctx: Context, params: dict[str, Any]) -> Any:
    inst = ctx.exchange.instrument(params.get("instrument_name"))
    return ctx.exchange.market.ticker(inst, ctx.now_ms, stats=True)


def get_order_book(ctx: Context, params: dict[str, Any]) -> Any:
    """The emulator's own book, live, to ``depth`` levels (10000: all of it)."""
    inst = ctx.exchange.instrument(params.get("instrument_name"))
    depth = params.get("depth", 20)
    if depth not in BOOK_DEPTHS or isinstance(depth, bool):
        raise invalid("depth", "must be one of " + ", ".join(map(str, BOOK_DEPTHS)))
    book = ctx.exchange.books[inst.name]
    t = ctx.exchange.market.ticker(inst, ctx.now_ms, stats=True)
    d: dict[str, Any] = {"timestamp": t["timestamp"], "stats": t["stats"], "state": "open"}
    for key in ("settlement_price", "open_interest", "min_price", "max_price", "mark_price", "last_price",
                "instrument_name", "index_price", "funding_8h", "current_funding", "interest_value",
                "underlying_price", "underlying_index", "mark_iv", "bid_iv", "ask_iv", "greeks", "interest_rate",
                "estimated_delivery_price"):
        if key in t:
            d[key] = t[key]
    d["change_id"] = ctx.exchange.change_ids[inst.name]
    d["bids"] = book.levels("buy", depth)
    d["best_bid_price"] = t["best_bid_price"]
    d["best_bid_amount"] = t["best_bid_amount"]
    d["best_ask_price"] = t["best_ask_price"]
    d["best_ask_amount"] = t["best_ask_amount"]
    d["asks"] = book.levels("sell", depth)
    return d


def _summary(ctx: Context, inst: Instrument) -> dict[str, Any]:
    t = ctx.exchange.market.ticker(inst, ctx.now_ms, stats=True)
    bid = t["best_bid_price"] or None
    ask = t["best_ask_price"] or None
    d: dict[str, Any] = {
        "volume_usd": t["stats"]["volume_usd"], "volume": t["stats"]["volume"],
        "quote_currency": "USD" if inst.kind == "future" else inst.currency,
        "price_change": t["stats"]["price_change"], "open_interest": t["open_interest"],
        "mid_price": round((bid + ask) / 2, 8) if bid and ask else None,
        "mark_price": t["mark_price"], "low": t["stats"]["low"], "last": t["last_price"],
        "instrument_name": inst.name, "high": t["stats"]["high"],
        "estimated_delivery_price": t["estimated_delivery_price"], "creation_timestamp": ctx.now_ms,
        "bid_price": bid, "base_currency": inst.currency, "ask_price": ask,
    }
    if inst.perpetual:
        d["funding_8h"] = t["funding_8h"]
        d["current_funding"] = t["current_funding"]
    if inst.kind == "option":
        d["underlying_price"] = t["underlying_price"]
        d["underlying_index"] = t["underlying_index"]
        d["interest_rate"] = t["interest_rate"]
        d["mark_iv"] = t["mark_iv"]
    return d


def get_book_summary_by_currency(ctx: Context, params: dict[str, Any]) -> Any:
    cur = _currency(ctx, params)
    kind = _kind(params)
    return [_summary(ctx, i) for i in ctx.exchange.instruments.values()
            if i.currency == cur and (kind is None or i.kind == kind)]


def get_book_summary_by_instrument(ctx: Context, params: dict[str, Any]) -> Any:
    return [_summary(ctx, ctx.exchange.instrument(params.get("instrument_name")))]


def get_index_price(ctx: Context, params: dict[str, Any]) -> Any:
    name = _str(params, "index_name")
    cur = {"btc_usd": "BTC", "eth_usd": "ETH"}.get(name or "")
    if cur is None:
        raise invalid("index_name", "wrong format")
    px = ctx.exchange.market.index[cur]
    return {"index_price": px, "estimated_delivery_price": px}


def get_last_trades_by_instrument(ctx: Context, params: dict[str, Any]) -> Any:
    inst = ctx.exchange.instrument(params.get("instrument_name"))
    count = _int(params, "count", 10, 1, 1000)
    trades = ctx.exchange.public_trades.get(inst.name, [])
    return {"trades": list(reversed(trades[-count:])), "has_more": len(trades) > count}


# ------------------------------------------------------------------ trading


def buy(ctx: Context, params: dict[str, Any]) -> Any:
    return ctx.exchange.place(ctx.client_id, ctx.session.id, "buy", params, ctx.now_ms)


def sell(ctx: Context, params: dict[str, Any]) -> Any:
    return ctx.exchange.place(ctx.client_id, ctx.session.id, "sell", params, ctx.now_ms)


def edit(ctx: Context, params: dict[str, Any]) -> Any:
    order = ctx.exchange.find_order(ctx.client_id, params.get("order_id"))
    return ctx.exchange.edit(ctx.client_id, order, params, ctx.now_ms)


def _by_label(ctx: Context, params: dict[str, Any], instrument: str | None = None) -> list[Order]:
    label = _str(params, "label")
    return [o for o in ctx.exchange.accounts[ctx.client_id].orders.values()
            if o.label == label and (instrument is None or o.instrument.name == instrument)]


def edit_by_label(ctx: Context, params: dict[str, Any]) -> Any:
    inst = ctx.exchange.instrument(params.get("instrument_name"))
    orders = [o for o in _by_label(ctx, params, inst.name) if o.is_open]
    if not orders:
        raise RpcError(10004, "order_not_found")
    if len(orders) > 1:
        raise RpcError(13032, "non_unique_order_label")
    return ctx.exchange.edit(ctx.client_id, orders[0], params, ctx.now_ms)


def cancel(ctx: Context, params: dict[str, Any]) -> Any:
    return ctx.exchange.cancel(ctx.client_id, params.get("order_id"), ctx.now_ms).as_dict()


def _cancelled(ctx: Context, params: dict[str, Any], orders: list[Order]) -> Any:
    if _bool(params, "detailed"):
        # Detailed execution report (PROTOCOL.md 3.3, cancel_all_detailed_error_10047 sample).
        return [{"currency": cur, "type": "total", "instrument_name": "all",
                 "result": [o.as_dict() for o in orders if o.instrument.currency == cur]}
                for cur in sorted({o.instrument.currency for o in orders})]
    return len(orders)


def cancel_all(ctx: Context, params: dict[str, Any]) -> Any:
    return _cancelled(ctx, params, ctx.exchange.cancel_where(ctx.now_ms, client_id=ctx.client_id))


def cancel_all_by_instrument(ctx: Context, params: dict[str, Any]) -> Any:
    inst = ctx.exchange.instrument(params.get("instrument_name"))
    return _cancelled(ctx, params, ctx.exchange.cancel_where(ctx.now_ms, client_id=ctx.client_id, instrument=inst.name))


def cancel_all_by_currency(ctx: Context, params: dict[str, Any]) -> Any:
    cur = _currency(ctx, params)
    return _cancelled(ctx, params, ctx.exchange.cancel_where(ctx.now_ms, client_id=ctx.client_id, currency=cur,
                                                            kind=_kind(params)))


def cancel_all_by_kind_or_type(ctx: Context, params: dict[str, Any]) -> Any:
    cur = params.get("currency")
    curs = cur if isinstance(cur, list) else [cur]
    done: list[Order] = []
    for c in curs:
        c2 = _currency(ctx, {"currency": c}, allow_any=True)
        done += ctx.exchange.cancel_where(ctx.now_ms, client_id=ctx.client_id, currency=None if c2 == "any" else c2,
                                          kind=_kind(params))
    return _cancelled(ctx, params, done)


def cancel_by_label(ctx: Context, params: dict[str, Any]) -> Any:
    label = _str(params, "label")
    cur = params.get("currency")
    return _cancelled(ctx, params, ctx.exchange.cancel_where(
        ctx.now_ms, client_id=ctx.client_id, label=label,
        currency=_currency(ctx, params) if cur is not None else None))


def close_position(ctx: Context, params: dict[str, Any]) -> Any:
    return ctx.exchange.close_position(ctx.client_id, ctx.session.id, params, ctx.now_ms)


def _orders_filtered(ctx: Context, params: dict[str, Any], open_only: bool, instrument: str | None = None,
                     currency: str | None = None) -> list[dict[str, Any]]:
    kind = _kind(params)
    order_type = params.get("type", "all")
    if order_type not in ("all", "limit", "market", "stop_all", "stop_limit", "stop_market", "trigger_all",
                          "take_all", "take_limit", "take_market", "trailing_all", "trailing_stop"):
        raise invalid("type", "wrong format")
    out = []
    for o in ctx.exchange.accounts[ctx.client_id].orders.values():
        if open_only and not o.is_open:
            continue
        if instrument is not None and o.instrument.name != instrument:
            continue
        if currency is not None and o.instrument.currency != currency:
            continue
        if kind is not None and o.instrument.kind != kind:
            continue
        if order_type not in ("all", o.order_type):
            continue
        out.append(o.as_dict())
    return out


def get_open_orders(ctx: Context, params: dict[str, Any]) -> Any:
    return _orders_filtered(ctx, params, True)


def get_open_orders_by_instrument(ctx: Context, params: dict[str, Any]) -> Any:
    inst = ctx.exchange.instrument(params.get("instrument_name"))
    return _orders_filtered(ctx, params, True, instrument=inst.name)


def get_open_orders_by_currency(ctx: Context, params: dict[str, Any]) -> Any:
    return _orders_filtered(ctx, params, True, currency=_currency(ctx, params))


def get_open_orders_by_label(ctx: Context, params: dict[str, Any]) -> Any:
    _currency(ctx, params)
    return [o.as_dict() for o in _by_label(ctx, params) if o.is_open]


def get_order_state(ctx: Context, params: dict[str, Any]) -> Any:
    return ctx.exchange.find_order(ctx.client_id, params.get("order_id")).as_dict()


def get_order_state_by_label(ctx: Context, params: dict[str, Any]) -> Any:
    _currency(ctx, params)
    return [o.as_dict() for o in _by_label(ctx, params)]


def _history(ctx: Context, params: dict[str, Any], **where: Any) -> Any:
    count = _int(params, "count", 20, 1, 1000)
    offset = _int(params, "offset", 0, 0, 10**9)
    rows = [o for o in _orders_filtered(ctx, params, False, **where) if o["order_state"] != "open"]
    rows.sort(key=lambda o: -o["last_update_timestamp"])
    return rows[offset:offset + count]


def get_order_history_by_instrument(ctx: Context, params: dict[str, Any]) -> Any:
    inst = ctx.exchange.instrument(params.get("instrument_name"))
    return _history(ctx, params, instrument=inst.name)


def get_order_history_by_currency(ctx: Context, params: dict[str, Any]) -> Any:
    return _history(ctx, params, currency=_currency(ctx, params))


def _user_trades(ctx: Context, params: dict[str, Any], pick: Callable[[dict[str, Any]], bool]) -> Any:
    count = _int(params, "count", 10, 1, 1000)
    trades = [t for t in ctx.exchange.accounts[ctx.client_id].trades if pick(t)]
    return {"trades": list(reversed(trades[-count:])), "has_more": len(trades) > count}


def get_user_trades_by_instrument(ctx: Context, params: dict[str, Any]) -> Any:
    inst = ctx.exchange.instrument(params.get("instrument_name"))
    return _user_trades(ctx, params, lambda t: t["instrument_name"] == inst.name)


def get_user_trades_by_currency(ctx: Context, params: dict[str, Any]) -> Any:
    cur = _currency(ctx, params)
    return _user_trades(ctx, params, lambda t: t["fee_currency"] == cur)


def get_user_trades_by_order(ctx: Context, params: dict[str, Any]) -> Any:
    order = ctx.exchange.find_order(ctx.client_id, params.get("order_id"))
    return [t for t in ctx.exchange.accounts[ctx.client_id].trades if t["order_id"] == order.order_id]


def get_positions(ctx: Context, params: dict[str, Any]) -> Any:
    cur = _currency(ctx, params, allow_any=True) if params.get("currency") is not None else "any"
    kind = _kind(params)
    acct = ctx.exchange.accounts[ctx.client_id]
    return [ctx.exchange.position_dict(acct, p.instrument, ctx.now_ms) for p in acct.positions.values()
            if p.size != 0 and cur in ("any", p.instrument.currency) and kind in (None, p.instrument.kind)]


def get_position(ctx: Context, params: dict[str, Any]) -> Any:
    inst = ctx.exchange.instrument(params.get("instrument_name"))
    return ctx.exchange.position_dict(ctx.exchange.accounts[ctx.client_id], inst, ctx.now_ms)


def get_account_summary(ctx: Context, params: dict[str, Any]) -> Any:
    cur = _currency(ctx, params)
    _bool(params, "extended")
    return ctx.exchange.account_summary(ctx.client_id, cur, ctx.now_ms)


def get_account_summaries(ctx: Context, params: dict[str, Any]) -> Any:
    curs = sorted({i.currency for i in ctx.exchange.instruments.values()})
    acct = ctx.exchange.accounts[ctx.client_id]
    return {"id": acct.user_id, "username": acct.client_id, "type": "main", "system_name": acct.client_id,
            "summaries": [ctx.exchange.account_summary(ctx.client_id, c, ctx.now_ms) for c in curs]}


def mass_quote(ctx: Context, params: dict[str, Any]) -> Any:
    """Mass quoting is a feature Deribit enables per account, with MMP set up first;
    the emulator's accounts do not have it, and say so as production does."""
    raise RpcError(13902, "mass_quotes_disabled")


@dataclass(frozen=True)
class Method:
    """A served method: its handler, credit pool, required token scope, WS-only flag."""

    handler: Callable[[Context, dict[str, Any]], Any]
    pool: str = "non_matching"
    scope: tuple[str, str] | None = None
    ws_only: bool = False

    @property
    def private(self) -> bool:
        return self.scope is not None


_ME = "matching"
_TRW = ("trade", "read_write")
_TR = ("trade", "read")
_AR = ("account", "read")
_ARW = ("account", "read_write")
#: Any valid token: private/subscribe, logout (channel scopes are checked per channel).
_ANY = ("account", "none")

METHODS: dict[str, Method] = {
    "public/hello": Method(hello, ws_only=True),
    "public/test": Method(test),
    "public/get_time": Method(get_time),
    "public/status": Method(status),
    "public/set_heartbeat": Method(set_heartbeat, ws_only=True),
    "public/disable_heartbeat": Method(disable_heartbeat, ws_only=True),
    "public/auth": Method(auth),
    "public/fork_token": Method(fork_token),
    "public/exchange_token": Method(exchange_token),
    "public/subscribe": Method(subscribe, pool="subscribe"),
    "public/unsubscribe": Method(unsubscribe, ws_only=True),
    "public/unsubscribe_all": Method(unsubscribe_all, ws_only=True),
    "public/get_currencies": Method(get_currencies),
    "public/get_instruments": Method(get_instruments),
    "public/get_instrument": Method(get_instrument),
    "public/ticker": Method(ticker),
    "public/get_order_book": Method(get_order_book),
    "public/get_book_summary_by_currency": Method(get_book_summary_by_currency),
    "public/get_book_summary_by_instrument": Method(get_book_summary_by_instrument),
    "public/get_index_price": Method(get_index_price),
    "public/get_last_trades_by_instrument": Method(get_last_trades_by_instrument),
    "private/subscribe": Method(private_subscribe, pool="subscribe", scope=_ANY),
    "private/unsubscribe": Method(unsubscribe, scope=_ANY, ws_only=True),
    "private/unsubscribe_all": Method(unsubscribe_all, scope=_ANY, ws_only=True),
    "private/logout": Method(logout, scope=_ANY, ws_only=True),
    "private/buy": Method(buy, _ME, _TRW),
    "private/sell": Method(sell, _ME, _TRW),
    "private/edit": Method(edit, _ME, _TRW),
    "private/edit_by_label": Method(edit_by_label, _ME, _TRW),
    "private/cancel": Method(cancel, _ME, _TRW),
    "private/cancel_all": Method(cancel_all, _ME, _TRW),
    "private/cancel_all_by_instrument": Method(cancel_all_by_instrument, _ME, _TRW),
    "private/cancel_all_by_currency": Method(cancel_all_by_currency, _ME, _TRW),
    "private/cancel_all_by_kind_or_type": Method(cancel_all_by_kind_or_type, _ME, _TRW),
    "private/cancel_by_label": Method(cancel_by_label, _ME, _TRW),
    "private/close_position": Method(close_position, _ME, _TRW),
    "private/mass_quote": Method(mass_quote, _ME, _TRW),
    "private/cancel_quotes": Method(mass_quote, _ME, _TRW),
    "private/get_open_orders": Method(get_open_orders, scope=_TR),
    "private/get_open_orders_by_instrument": Method(get_open_orders_by_instrument, scope=_TR),
    "private/get_open_orders_by_currency": Method(get_open_orders_by_currency, scope=_TR),
    "private/get_open_orders_by_label": Method(get_open_orders_by_label, scope=_TR),
    "private/get_order_state": Method(get_order_state, scope=_TR),
    "private/get_order_state_by_label": Method(get_order_state_by_label, scope=_TR),
    "private/get_order_history_by_instrument": Method(get_order_history_by_instrument, scope=_TR),
    "private/get_order_history_by_currency": Method(get_order_history_by_currency, scope=_TR),
    "private/get_user_trades_by_instrument": Method(get_user_trades_by_instrument, scope=_TR),
    "private/get_user_trades_by_currency": Method(get_user_trades_by_currency, scope=_TR),
    "private/get_user_trades_by_order": Method(get_user_trades_by_order, scope=_TR),
    "private/get_positions": Method(get_positions, scope=_AR),
    "private/get_position": Method(get_position, scope=_AR),
    "private/get_account_summary": Method(get_account_summary, scope=_AR),
    "private/get_account_summaries": Method(get_account_summaries, scope=_AR),
    "private/enable_cancel_on_disconnect": Method(enable_cancel_on_disconnect, scope=_ARW),
    "private/disable_cancel_on_disconnect": Method(disable_cancel_on_disconnect, scope=_ARW),
    "private/get_cancel_on_disconnect": Method(get_cancel_on_disconnect, scope=_AR),
}

#: method name -> handler, for tests and tools that list what is served
HANDLERS: dict[str, Callable[[Context, dict[str, Any]], Any]] = {name: m.handler for name, m in METHODS.items()}
