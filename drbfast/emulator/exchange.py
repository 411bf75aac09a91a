"""The emulated exchange's state: API keys, tokens and scopes, sub-accounts, instruments,
one matching engine per instrument, and the synthetic market trading through them.

Sans-I/O: connections are integer ids, time is passed in, and what must be told to
users comes out of :meth:`Exchange.drain` as events (orders, trades) for the session
layer to publish.
"""

from __future__ import annotations

import hmac
import itertools
import secrets
from dataclasses import dataclass, field
from typing import Any

from ..auth import sign
from .accounts import Account, RateLimits
from .book import STREAMS, Fill, Order, OrderBook
from .errors import RpcError, invalid
from .grants import verify_grant
from .instruments import DIGITS, Instrument, default_instruments
from .market import MARKET_ACCOUNT, Market

__all__ = ["Event", "Exchange", "Order", "Token", "sign", "standalone_market", "GRANTABLE"]

#: What the emulator's API keys may be granted (the scope of a full-access key).
GRANTABLE = {"account": "read_write", "trade": "read_write", "wallet": "read_write", "block_trade": "read_write",
             "block_rfq": "read_write"}
#: Granted when the request names no access scopes (the live example's shape, PROTOCOL.md 5.3).
DEFAULT_ACCESS = {"account": "read_write", "trade": "read_write", "wallet": "read", "block_trade": "read"}
_LEVEL = {"none": 0, "read": 1, "read_write": 2}

TIF = ("good_til_cancelled", "good_til_day", "fill_or_kill", "immediate_or_cancel")
ORDER_TYPES = ("limit", "market")


@dataclass
class Token:
    access_token: str
    refresh_token: str
    client_id: str
    expires_at: float
    scope: str
    connection: int | None  # connection-scoped tokens only work on that connection
    access: dict[str, str] = field(default_factory=dict)
    session: str | None = None
    #: made for one signed HTTP request, revoked after it
    ephemeral: bool = False

    def __repr__(self) -> str:  # tokens are credentials: never print them
        return f"Token(client_id={self.client_id!r}, scope={self.scope!r}, connection={self.connection})"

    def allows(self, area: str, level: str) -> bool:
        return _LEVEL[self.access.get(area, "none")] >= _LEVEL[level]


@dataclass
class Event:
    """Something users must hear about: ``kind`` is "order" (data: the Order),
    "user_trades" (data: trade dicts of one account and instrument) or "trades"
    (data: public trade dicts of one instrument)."""

    kind: str
    account: str | None
    instrument: str
    data: Any


def _r(x: float) -> float:
    return round(x, DIGITS)


class Exchange:
    """Keys, tokens, accounts, instruments, books and the market flow."""

    def __init__(self, keys: dict[str, str], token_ttl: float, signature_window: float, *, seed: int = 1,
                 limits: RateLimits | None = None, now_ms: int = 0, market: Market | None = None,
                 depth: int = 20) -> None:
        self.keys = keys
        self.token_ttl = token_ttl
        #: Coinbase gateway mode: CDP key name -> public key, and its tokens' lifetime
        self.cdp_keys: dict[str, Any] = {}
        self.cdp_token_ttl = 900.0
        self.signature_window = signature_window
        self.limits = limits or RateLimits()
        self.tokens: dict[str, Token] = {}
        self.refresh_tokens: dict[str, Token] = {}
        self.accounts: dict[str, Account] = {
            cid: Account(cid, 10_580 + n, self.limits) for n, cid in enumerate(keys)}
        self.instruments: dict[str, Instrument] = {i.name: i for i in default_instruments()}
        self.books: dict[str, OrderBook] = {name: OrderBook(inst) for name, inst in self.instruments.items()}
        self.orders: dict[str, Order] = {}
        self._synthetic: dict[str, dict[str, Order]] = {name: {} for name in self.instruments}
        self._order_ids = itertools.count(31_545_000_001)
        self._trade_ids = itertools.count(48_079_270)
        self._trade_seq: dict[str, int] = {name: 30_289_442 for name in self.instruments}
        self.events: list[Event] = []
        #: the last public trades per instrument (public/get_last_trades_by_instrument)
        self.public_trades: dict[str, list[dict[str, Any]]] = {name: [] for name in self.instruments}
        #: one change_id counter per currency, shared by its books, so a book's ids jump
        self._currency_change_ids: dict[str, int] = {"BTC": 193_809_616_000, "ETH": 74_502_110_000}
        #: each book's latest change_id, and the last one each stream published
        self.change_ids: dict[str, int] = {}
        self.stream_ids: dict[tuple[str, str], int] = {}
        if market is None:
            self.market = Market(self, seed=seed, depth=depth)
        else:
            self.market = market
            market.bind(self)
        self.market.seed_books(now_ms)
        for name, book in self.books.items():
            cid = self.next_change_id(self.instruments[name])
            for stream in STREAMS:
                book.flush(stream)
                self.stream_ids[name, stream] = cid

    def next_change_id(self, inst: Instrument) -> int:
        cur = inst.currency
        self._currency_change_ids[cur] = self._currency_change_ids.get(cur, 1_000_000) + 1 + len(self.instruments)
        self.change_ids[inst.name] = self._currency_change_ids[cur]
        return self.change_ids[inst.name]

    def publish_book(self, name: str, stream: str = "agg") -> tuple[int, int, list[list[Any]], list[list[Any]]] | None:
        """A stream's changes of the book since it last published, as
        (prev_change_id, change_id, bids, asks), or None if nothing changed.

        ``raw`` gives every change its own change_id; an ``agg`` frame carries the
        latest change_id, a new one only if no ``raw`` publication has named it yet.
        """
        prev = self.stream_ids[name, stream]
        bids, asks = self.books[name].flush(stream)
        if not bids and not asks:
            return None
        if stream == "raw" or self.change_ids[name] == prev:
            self.next_change_id(self.instruments[name])
        cur = self.stream_ids[name, stream] = self.change_ids[name]
        return prev, cur, bids, asks

    def resume_after(self, name: str, change_id: int, stream: str = "raw") -> None:
        """Continue a stream's chain after a flood that used change_ids up to ``change_id``."""
        inst = self.instruments[name]
        self.change_ids[name] = max(self.change_ids[name], change_id)
        self.stream_ids[name, stream] = change_id
        self._currency_change_ids[inst.currency] = max(self._currency_change_ids[inst.currency], change_id)

    def __repr__(self) -> str:
        return f"Exchange(accounts={len(self.keys)}, orders={len(self.orders)})"

    def drain(self) -> list[Event]:
        """Take the events produced since the last call."""
        out, self.events = self.events, []
        return out

    # ------------------------------------------------------------------ auth

    def _grant(self, requested: str) -> tuple[dict[str, str], list[str], str | None]:
        access = dict(DEFAULT_ACCESS)
        asked_access = False
        extra: list[str] = []
        session = None
        for part in requested.split():
            area, _, level = part.partition(":")
            if area in GRANTABLE and level in _LEVEL:
                if not asked_access:
                    access = {}
                    asked_access = True
                # The server narrows to what the key allows (PROTOCOL.md 5.3).
                access[area] = level if _LEVEL[level] <= _LEVEL[GRANTABLE[area]] else GRANTABLE[area]
            elif area == "session" and level:
                session = level
            elif area in ("expires", "ip"):
                extra.append(part)
        return access, extra, session

    def issue(self, client_id: str, now: float, connection: int | None, access: dict[str, str],
               session: str | None, extra: list[str]) -> Token:
        words = [f"session:{session}" if session else "connection"]
        words += [f"{a}:{lvl}" for a, lvl in access.items() if lvl != "none"] + extra + ["mainaccount"]
        token = Token(
            access_token=f"emu.{secrets.token_urlsafe(24)}",
            refresh_token=f"emu.r.{secrets.token_urlsafe(24)}",
            client_id=client_id,
            expires_at=now + self.token_ttl,
            scope=" ".join(words),
            connection=None if session else connection,
            access=access,
            session=session,
        )
        self.tokens[token.access_token] = token
        self.refresh_tokens[token.refresh_token] = token
        return token

    def authenticate(self, params: dict[str, Any], now: float, connection: int) -> Token:
        """Run ``public/auth``; raise RpcError with Deribit's code when refused."""
        grant = params.get("grant_type")
        scope_req = params.get("scope") or ""
        if not isinstance(scope_req, str):
            raise invalid("scope", "must be a string")
        access, extra, session = self._grant(scope_req)
        if grant == "client_credentials":
            cid, secret = params.get("client_id"), params.get("client_secret")
            if not isinstance(cid, str) or not isinstance(secret, str):
                raise invalid("client_secret" if isinstance(cid, str) else "client_id", "value required")
            if self.keys.get(cid) is None or not hmac.compare_digest(self.keys[cid].encode(), secret.encode()):
                raise RpcError(13004, "invalid_credentials")
            return self.issue(cid, now, connection, access, session, extra)
        if grant == "client_signature":
            cid = params.get("client_id")
            ts = params.get("timestamp")
            sig = params.get("signature")
            nonce = params.get("nonce", "")
            data = params.get("data", "")
            for name, value in (("client_id", cid), ("timestamp", ts), ("signature", sig)):
                if value is None:
                    raise invalid(name, "value required")
            if not isinstance(ts, int) or isinstance(ts, bool):
                raise invalid("timestamp", "must be an integer")
            if not isinstance(cid, str) or cid not in self.keys:
                raise RpcError(13004, "invalid_credentials")
            # Compare in integers: a timestamp like 10**400 does not fit a float.
            if abs(int(now * 1000) - ts) > int(self.signature_window * 1000):
                raise RpcError(13009, "unauthorized", {"reason": "timestamp is out of the allowed window", "param": "timestamp"})
            expected = sign(self.keys[cid], ts, str(nonce), str(data))
            if not isinstance(sig, str) or not hmac.compare_digest(expected.encode(), sig.lower().encode("utf-8", "replace")):
                raise RpcError(13004, "invalid_credentials")
            return self.issue(cid, now, connection, access, session, extra)
        if grant == "coinbase_cdp" and self.cdp_keys:
            name = verify_grant(params, self.cdp_keys, now)
            if name not in self.accounts:
                self.accounts[name] = Account(name, 10_580 + len(self.accounts), self.limits)
            token = self.issue(name, now, connection, access, session, extra)
            token.expires_at = now + self.cdp_token_ttl
            return token
        if grant == "refresh_token":
            old = self.refresh_tokens.pop(str(params.get("refresh_token")), None)
            if old is None:
                raise RpcError(13009, "unauthorized", {"reason": "invalid_token", "param": "refresh_token"})
            self.tokens.pop(old.access_token, None)
            return self.issue(old.client_id, now, connection, dict(old.access), old.session,
                               [w for w in old.scope.split() if w.startswith(("expires:", "ip:"))])
        raise invalid("grant_type", "wrong format")

    def authenticate_http(self, header: str, method: str, uri: str, body: str, now: float) -> Token:
        """Check a ``deri-hmac-sha256 id=..,ts=..,nonce=..,sig=..`` Authorization header
        (PROTOCOL.md 5.1: HMAC-SHA256 of ``ts\nnonce\nMETHOD\nURI\nbody\n``); return a
        token good for this one request."""
        fields = dict(part.strip().partition("=")[::2] for part in header.split(" ", 1)[1].split(","))
        cid, ts_s, nonce, sig = (fields.get(k, "") for k in ("id", "ts", "nonce", "sig"))
        if cid not in self.keys:
            raise RpcError(13004, "invalid_credentials")
        if not ts_s.isdigit() or len(ts_s) > 20 or abs(int(now * 1000) - int(ts_s)) > int(self.signature_window * 1000):
            raise RpcError(13009, "unauthorized", {"reason": "timestamp is out of the allowed window", "param": "ts"})
        expected = hmac.new(self.keys[cid].encode(), f"{ts_s}\n{nonce}\n{method.upper()}\n{uri}\n{body}\n".encode(),
                            "sha256").hexdigest()
        if not hmac.compare_digest(expected.encode(), sig.lower().encode("utf-8", "replace")):
            raise RpcError(13004, "invalid_credentials")
        token = self.issue(cid, now, None, dict(DEFAULT_ACCESS), None, [])
        token.ephemeral = True
        return token

    def token(self, access_token: str, now: float, connection: int) -> Token | None:
        """The live token for ``access_token`` usable on ``connection``, else None."""
        token = self.tokens.get(access_token)
        if token is None or token.expires_at <= now:
            return None
        if token.connection is not None and token.connection != connection:
            return None
        return token

    def revoke_connection(self, connection: int) -> None:
        """Connection-scoped tokens die with their connection."""
        for key in [k for k, t in self.tokens.items() if t.connection == connection]:
            token = self.tokens.pop(key)
            self.refresh_tokens.pop(token.refresh_token, None)

    # ------------------------------------------------------------------ lookups

    def account(self, client_id: str) -> Account:
        return self.accounts[client_id]

    def instrument(self, name: Any, param: str = "instrument_name") -> Instrument:
        if name is None:
            raise invalid(param, "value required")
        if not isinstance(name, str):
            raise invalid(param, "must be a string")
        inst = self.instruments.get(name)
        if inst is None:
            raise RpcError(10020, "invalid_or_unsupported_instrument")
        return inst

    def synthetic_orders(self, instrument: str) -> list[Order]:
        return list(self._synthetic[instrument].values())

    def open_interest(self, inst: Instrument) -> float:
        return _r(sum(max(a.positions[inst.name].size, 0.0) for a in self.accounts.values() if inst.name in a.positions)
                  + 1_000 * inst.contract_size * (50 if inst.kind == "future" else 1))

    def open_orders(self, client_id: str, instrument: str | None = None) -> list[Order]:
        """Open orders of an account (optionally of one instrument), oldest first."""
        return [o for o in self.accounts[client_id].open_orders()
                if instrument is None or o.instrument.name == instrument]

    # ------------------------------------------------------------------ trading

    def _new_order(self, account: str, connection: int | None, inst: Instrument, direction: str, amount: float,
                   price: float | None, order_type: str, now_ms: int, **kw: Any) -> Order:
        acct = self.accounts.get(account)
        return Order(str(next(self._order_ids)), account, connection, inst, direction, amount, price, order_type,
                     now_ms, updated_ms=now_ms, user_id=acct.user_id if acct is not None else 0, **kw)

    def place_synthetic(self, inst: Instrument, direction: str, amount: float, price: float | None, now_ms: int) -> None:
        """An order of the market flow: a resting quote, or (price None) a market order."""
        amount = max(inst.min_trade_amount, round(amount / inst.contract_size) * inst.contract_size)
        order = self._new_order(MARKET_ACCOUNT, None, inst, direction, _r(amount), price,
                                "limit" if price is not None else "market", now_ms, synthetic=True)
        self._execute(order, now_ms)

    def cancel_synthetic(self, order: Order, now_ms: int) -> None:
        self.books[order.instrument.name].remove(order)
        order.state = "cancelled"
        self._synthetic[order.instrument.name].pop(order.order_id, None)

    def place(self, client_id: str, connection: int, direction: str, params: dict[str, Any], now_ms: int) -> dict[str, Any]:
        """``private/buy`` / ``private/sell``: validate as production, match, rest the
        rest per time in force; return ``{"order": ..., "trades": [...]}``."""
        inst = self.instrument(params.get("instrument_name"))
        order_type = params.get("type", "limit")
        if order_type not in ORDER_TYPES:
            raise invalid("type", "must be one of limit, market")
        amount_p, contracts = params.get("amount"), params.get("contracts")
        if amount_p is None and contracts is not None:
            if isinstance(contracts, bool) or not isinstance(contracts, (int, float)):
                raise invalid("contracts", "must be a number")
            amount_p = contracts * inst.contract_size
        if amount_p is None:
            raise invalid("amount", "value required")
        amount = inst.check_amount(amount_p)
        price: float | None = None
        if order_type == "limit":
            if params.get("price") is None:
                raise invalid("price", "value required")
            price = inst.check_price(params["price"])
        tif = params.get("time_in_force", "good_til_cancelled")
        if tif not in TIF:
            raise invalid("time_in_force", "wrong format")
        label = params.get("label", "")
        if not isinstance(label, str) or len(label) > 64:
            raise invalid("label", "must be a string of at most 64 characters")
        flags = {}
        for name in ("post_only", "reject_post_only", "reduce_only"):
            value = params.get(name, False)
            if not isinstance(value, bool):
                raise invalid(name, "must be a boolean")
            flags[name] = value
        if flags["post_only"] and (order_type == "market" or tif in ("fill_or_kill", "immediate_or_cancel")):
            raise RpcError(11055, "post_only_not_allowed")
        max_show = params.get("max_show")
        if max_show is not None and (isinstance(max_show, bool) or not isinstance(max_show, (int, float))
                                     or not 0 <= max_show <= amount):
            raise RpcError(10024, "invalid_max_show")
        order = self._new_order(client_id, connection, inst, direction, amount, price, order_type, now_ms,
                                label=label, time_in_force=tif, max_show=max_show, **flags)
        if tif == "good_til_day":
            order.expires_ms = _next_8am(now_ms)
        book = self.books[inst.name]
        if order.post_only and book.crosses(direction, price):
            if order.reject_post_only:
                raise RpcError(11054, "post_only_reject")
            # Production moves a crossing post-only price just inside the spread.
            best = book.best_ask() if direction == "buy" else book.best_bid()
            assert best is not None and price is not None
            order.price = inst.round_price(best - inst.tick_for(best) if direction == "buy" else best + inst.tick_for(best))
        if order.reduce_only:
            pos = self.accounts[client_id].positions.get(inst.name)
            size = pos.size if pos is not None else 0.0
            reducible = -size if direction == "buy" else size
            if reducible <= 0:
                order.state, order.cancel_reason = "cancelled", "reduce_only"
                self._record(order)
                return {"order": order.as_dict(), "trades": []}
            order.amount = min(order.amount, _r(reducible))
        trades = self._execute(order, now_ms)
        return {"order": order.as_dict(), "trades": trades}

    def _record(self, order: Order) -> None:
        self.orders[order.order_id] = order
        self.accounts[order.account].orders[order.order_id] = order
        self.events.append(Event("order", order.account, order.instrument.name, order))

    def _execute(self, order: Order, now_ms: int) -> list[dict[str, Any]]:
        """Match ``order``, then rest or cancel its remainder; return the taker's trades."""
        inst = order.instrument
        book = self.books[inst.name]
        fills: list[Fill] = []
        if order.time_in_force == "fill_or_kill" and book.available(order.direction, order.price) < order.amount:
            order.state = "cancelled"
        else:
            limit = order.price
            if order.order_type == "market" and order.synthetic:
                # The market flow's market orders stay inside the price band (ticker
                # min_price / max_price), however thin the book: without it, a flow sell
                # swept a lone far-away user bid off a side the flow had emptied for a
                # moment. (A user's market order is not banded: the emulator leaves it
                # to the book, as its tests expect.)
                low, high = self.market.price_band(inst, self.market.mark(inst, now_ms))
                limit = high if order.direction == "buy" else low
            fills = book.match(order, limit)
            if order.remaining <= 0:
                order.state = "filled"
            elif order.order_type == "market" or order.time_in_force in ("immediate_or_cancel", "fill_or_kill"):
                order.state = "cancelled"
            else:
                book.rest(order)
                if order.synthetic:
                    self._synthetic[inst.name][order.order_id] = order
        if order.order_type == "market" and fills:
            order.price = fills[-1].price  # the market order's worst fill
        order.updated_ms = now_ms
        if not order.synthetic:
            self._record(order)
        return self._settle(fills, now_ms).get(order.order_id, [])

    def _settle(self, fills: list[Fill], now_ms: int) -> dict[str, list[dict[str, Any]]]:
        """Book fills on accounts; publish public and private trades; return each
        user order's trade dicts by order id."""
        if not fills:
            return {}
        inst = fills[0].taker.instrument
        index = self.market.index[inst.currency]
        mark = self.market.mark(inst, now_ms)
        public: list[dict[str, Any]] = []
        private: dict[str, list[dict[str, Any]]] = {}
        by_order: dict[str, list[dict[str, Any]]] = {}
        for fill in fills:
            self._trade_seq[inst.name] += 1
            trade_id = str(next(self._trade_ids))
            tick_dir = self.market.on_trade(inst, fill.price, fill.amount)
            public.append({"amount": fill.amount, "direction": fill.taker.direction, "index_price": index,
                           "instrument_name": inst.name, "mark_price": mark, "price": fill.price,
                           "tick_direction": tick_dir, "timestamp": now_ms, "trade_id": trade_id,
                           "trade_seq": self._trade_seq[inst.name]})
            for order, liquidity in ((fill.maker, "M"), (fill.taker, "T")):
                if order.synthetic:
                    if order.state == "filled":
                        self._synthetic[inst.name].pop(order.order_id, None)
                    continue
                acct = self.accounts[order.account]
                fee, pnl = acct.book_fill(inst, order.direction, fill.amount, fill.price, liquidity == "M")
                trade = {"amount": fill.amount, "direction": order.direction, "fee": fee, "fee_currency": inst.currency,
                         "index_price": index, "instrument_name": inst.name, "liquidity": liquidity,
                         "mark_price": mark, "matching_id": None, "order_id": order.order_id,
                         "order_type": order.order_type, "post_only": order.post_only, "price": fill.price,
                         "reduce_only": order.reduce_only, "state": order.state, "tick_direction": tick_dir,
                         "timestamp": now_ms, "trade_id": trade_id, "trade_seq": self._trade_seq[inst.name],
                         "profit_loss": _r(pnl)}
                if order.label:
                    trade["label"] = order.label
                acct.trades.append(trade)
                private.setdefault(order.account, []).append(trade)
                by_order.setdefault(order.order_id, []).append(trade)
                if liquidity == "M":
                    order.updated_ms = now_ms
                    self.events.append(Event("order", order.account, inst.name, order))
        for trades in by_order.values():  # the order's final state, as production reports it
            for t in trades:
                t["state"] = self.orders[t["order_id"]].state if t["order_id"] in self.orders else t["state"]
        self.events.append(Event("trades", None, inst.name, public))
        kept = self.public_trades[inst.name]
        kept.extend(public)
        del kept[:-1000]
        for account, trades in private.items():
            self.events.append(Event("user_trades", account, inst.name, trades))
        return by_order

    def find_order(self, client_id: str, order_id: Any) -> Order:
        if not isinstance(order_id, str):
            raise invalid("order_id", "value required" if order_id is None else "must be a string")
        order = self.accounts[client_id].orders.get(order_id)
        if order is None:
            raise RpcError(10004, "order_not_found")
        return order

    def cancel(self, client_id: str, order_id: Any, now_ms: int) -> Order:
        """Cancel one open order of ``client_id``."""
        order = self.find_order(client_id, order_id)
        if not order.is_open:
            raise RpcError(11044, "not_open_order")
        self._cancel(order, now_ms)
        return order

    def _cancel(self, order: Order, now_ms: int, reason: str | None = None) -> None:
        self.books[order.instrument.name].remove(order)
        order.state = "cancelled"
        order.updated_ms = now_ms
        if reason:
            order.cancel_reason = reason
        self.events.append(Event("order", order.account, order.instrument.name, order))

    def cancel_where(self, now_ms: int, *, client_id: str | None = None, connection: int | None = None,
                     instrument: str | None = None, currency: str | None = None, kind: str | None = None,
                     label: str | None = None, reason: str | None = None) -> list[Order]:
        """Cancel every open user order matching the filters; return them."""
        done = []
        for order in list(self.orders.values()):
            if not order.is_open:
                continue
            if client_id is not None and order.account != client_id:
                continue
            if connection is not None and order.connection != connection:
                continue
            if instrument is not None and order.instrument.name != instrument:
                continue
            if currency is not None and order.instrument.currency != currency:
                continue
            if kind is not None and order.instrument.kind != kind:
                continue
            if label is not None and order.label != label:
                continue
            self._cancel(order, now_ms, reason)
            done.append(order)
        return done

    def edit(self, client_id: str, order: Order, params: dict[str, Any], now_ms: int) -> dict[str, Any]:
        """``private/edit``: new amount and/or price. A lower amount at the same price
        keeps the queue position; anything else goes to the back (and may trade)."""
        if not order.is_open:
            raise RpcError(11044, "not_open_order")
        inst = order.instrument
        amount = inst.check_amount(params["amount"]) if params.get("amount") is not None else order.amount
        price = inst.check_price(params["price"]) if params.get("price") is not None else order.price
        if amount < order.filled_amount:
            raise invalid("amount", "must not be less than the filled amount")
        post_only = params.get("post_only", order.post_only)
        if not isinstance(post_only, bool):
            raise invalid("post_only", "must be a boolean")
        book = self.books[inst.name]
        if post_only and book.crosses(order.direction, price):
            if params.get("reject_post_only", order.reject_post_only):
                raise RpcError(11054, "post_only_reject")
            best = book.best_ask() if order.direction == "buy" else book.best_bid()
            assert best is not None
            price = inst.round_price(best - inst.tick_for(best) if order.direction == "buy" else best + inst.tick_for(best))
        keep_place = price == order.price and amount <= order.amount
        order.replaced = True
        order.updated_ms = now_ms
        order.post_only = post_only
        if keep_place:
            assert order.price is not None
            book.touch(order.direction, order.price)
            order.amount = amount
            if order.remaining <= 0:
                book.remove(order)
                order.state = "filled"
            self._record(order)
            return {"order": order.as_dict(), "trades": []}
        book.remove(order)
        order.amount, order.price = amount, price
        order.state = "open"
        trades = self._execute(order, now_ms)
        return {"order": order.as_dict(), "trades": trades}

    def close_position(self, client_id: str, connection: int, params: dict[str, Any], now_ms: int) -> dict[str, Any]:
        inst = self.instrument(params.get("instrument_name"))
        order_type = params.get("type")
        if order_type not in ORDER_TYPES:
            raise invalid("type", "value required" if order_type is None else "must be one of limit, market")
        pos = self.accounts[client_id].positions.get(inst.name)
        if pos is None or pos.size == 0:
            raise RpcError(11044, "not_open_order", {"reason": "no position", "param": "instrument_name"})
        direction = "sell" if pos.size > 0 else "buy"
        req: dict[str, Any] = {"instrument_name": inst.name, "amount": abs(pos.size), "type": order_type,
                               "reduce_only": True}
        if order_type == "limit":
            req["price"] = params.get("price")
        return self.place(client_id, connection, direction, req, now_ms)

    # ------------------------------------------------------------------ accounts

    def position_dict(self, acct: Account, inst: Instrument, now_ms: int) -> dict[str, Any]:
        pos = acct.position(inst)
        mark = self.market.mark(inst, now_ms)
        funding = None
        if inst.perpetual:
            f = self.market.funding(inst, now_ms)
            funding = {"interest_value": f["interest_value"], "realized_funding": 0.0}
        return pos.as_dict(mark, self.market.index[inst.currency], funding)

    def account_summary(self, client_id: str, currency: str, now_ms: int) -> dict[str, Any]:
        """``private/get_account_summary`` (and ``user.portfolio`` data): balances from
        fills and fees, simple margins, and the account's rate ``limits``."""
        acct = self.accounts[client_id]
        d = self.portfolio(acct, currency, now_ms)
        d["limits"] = self.limits.as_limits()
        d["type"] = "main"
        d["username"] = acct.client_id
        d["id"] = acct.user_id
        return d

    def portfolio(self, acct: Account, currency: str, now_ms: int) -> dict[str, Any]:
        balance = _r(acct.balances.get(currency, 0.0))
        upl = fut_upl = opt_upl = 0.0
        delta = opt_delta = 0.0
        im = mm = 0.0
        opt_value = 0.0
        for pos in acct.positions.values():
            inst = pos.instrument
            if inst.currency != currency or pos.size == 0:
                continue
            mark = self.market.mark(inst, now_ms)
            fl = pos.floating(mark)
            upl += fl
            if inst.kind == "future":
                fut_upl += fl
                size_cur = pos.size / mark
                delta += size_cur
                im += abs(size_cur) * 0.02
                mm += abs(size_cur) * 0.015
            else:
                opt_upl += fl
                opt_value += pos.size * mark
                opt_delta += pos.size * 0.5
                im += abs(pos.size) * mark if pos.size < 0 else 0.0
        open_margin = sum(o.remaining / (o.price or 1) * 0.02 if o.instrument.inverse else 0.0
                          for o in acct.open_orders() if o.instrument.currency == currency)
        equity = _r(balance + upl + opt_value)
        rpl = _r(acct.session_rpl.get(currency, 0.0))
        index_name = f"{currency.lower()}_usd"
        return {
            "delta_total": _r(delta + opt_delta), "options_gamma": 0.0, "projected_initial_margin": _r(im + open_margin),
            "options_vega": 0.0, "fee_balance": 0, "session_rpl": rpl,
            "estimated_liquidation_ratio": 0.0, "options_theta": 0.0, "margin_balance": _r(balance + upl),
            "session_upl": _r(upl), "balance": balance, "margin_model": "segregated_sm", "equity": equity,
            "available_funds": _r(balance + upl - im - open_margin), "projected_maintenance_margin": _r(mm),
            "initial_margin": _r(im + open_margin), "options_delta": _r(opt_delta), "currency": currency,
            "options_gamma_map": {}, "futures_pl": _r(fut_upl + rpl), "portfolio_margining_enabled": False,
            "futures_session_upl": _r(fut_upl), "maintenance_margin": _r(mm), "options_vega_map": {},
            "options_value": _r(opt_value), "delta_total_map": {index_name: _r(delta + opt_delta)},
            "cross_collateral_enabled": False, "options_session_upl": _r(opt_upl), "additional_reserve": 0,
            "spot_reserve": 0, "total_pl": _r(upl + rpl), "futures_session_rpl": rpl, "options_session_rpl": 0,
            "estimated_liquidation_ratio_map": {}, "available_withdrawal_funds": _r(balance - im - open_margin),
            "options_theta_map": {}, "projected_delta_total": _r(delta + opt_delta), "options_pl": _r(opt_upl),
        }

    def expire(self, now_ms: int) -> None:
        """Cancel good-til-day orders past their 08:00 UTC expiry."""
        for order in list(self.orders.values()):
            if order.is_open and order.expires_ms is not None and order.expires_ms <= now_ms:
                self._cancel(order, now_ms, "expired")


def _next_8am(now_ms: int) -> int:
    day = 86_400_000
    eight = 8 * 3_600_000
    t = (now_ms - eight) // day * day + eight
    return t + day if t <= now_ms else t


def standalone_market(seed: int = 1, depth: int = 20) -> Market:
    """A market over an exchange of its own with no accounts: ``snapshot`` and
    ``step_book`` give its book frames (what ``Market(seed=...)`` alone used to be)."""
    market = Market(seed=seed, depth=depth)
    Exchange({}, 0.0, 0.0, seed=seed, market=market)
    return market
