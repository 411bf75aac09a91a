"""The emulated exchange's state: API keys, tokens, orders and cancel-on-disconnect.

Sans-I/O: connections are referred to by an integer id, time is passed in, and what
must be told to the user's connections comes back as return values.
"""

from __future__ import annotations

import hmac
import itertools
import secrets
from dataclasses import dataclass, field
from typing import Any

from ..auth import sign
from .errors import RpcError

__all__ = ["Exchange", "Order", "Token", "sign"]


@dataclass
class Token:
    access_token: str
    refresh_token: str
    client_id: str
    expires_at: float
    scope: str
    connection: int | None  # connection-scoped tokens only work on that connection

    def __repr__(self) -> str:  # tokens are credentials: never print them
        return f"Token(client_id={self.client_id!r}, scope={self.scope!r}, connection={self.connection})"


@dataclass
class Order:
    order_id: str
    client_id: str
    connection: int
    instrument_name: str
    direction: str
    amount: float | int
    price: float | int | None
    order_type: str
    label: str
    created_ms: int
    updated_ms: int
    state: str = "open"
    filled_amount: float | int = 0
    post_only: bool = False
    reduce_only: bool = False

    def as_dict(self) -> dict[str, Any]:
        """The order object as Deribit's user.orders and private/buy return it."""
        return {
            "amount": self.amount,
            "api": True,
            "average_price": self.price if self.filled_amount else 0,
            "creation_timestamp": self.created_ms,
            "direction": self.direction,
            "filled_amount": self.filled_amount,
            "instrument_name": self.instrument_name,
            "is_liquidation": False,
            "label": self.label,
            "last_update_timestamp": self.updated_ms,
            "max_show": self.amount,
            "order_id": self.order_id,
            "order_state": self.state,
            "order_type": self.order_type,
            "post_only": self.post_only,
            "price": self.price if self.price is not None else "market_price",
            "reduce_only": self.reduce_only,
            "replaced": False,
            "time_in_force": "good_til_cancelled",
        }


@dataclass
class Exchange:
    """Keys, tokens, orders and cancel-on-disconnect flags of the emulated exchange."""

    keys: dict[str, str]
    token_ttl: float
    signature_window: float
    tokens: dict[str, Token] = field(default_factory=dict)
    refresh_tokens: dict[str, Token] = field(default_factory=dict)
    orders: dict[str, Order] = field(default_factory=dict)
    #: account-scope cancel-on-disconnect default per client id
    cod_account: dict[str, bool] = field(default_factory=dict)
    _order_ids: Any = field(default_factory=lambda: itertools.count(1))

    def __repr__(self) -> str:
        return f"Exchange(accounts={len(self.keys)}, orders={len(self.orders)})"

    # ------------------------------------------------------------------ auth

    def _issue(self, client_id: str, now: float, connection: int | None, scope: str) -> Token:
        token = Token(
            access_token=f"emu.{secrets.token_urlsafe(24)}",
            refresh_token=f"emu.r.{secrets.token_urlsafe(24)}",
            client_id=client_id,
            expires_at=now + self.token_ttl,
            scope=scope,
            connection=connection,
        )
        self.tokens[token.access_token] = token
        self.refresh_tokens[token.refresh_token] = token
        return token

    def authenticate(self, params: dict[str, Any], now: float, connection: int) -> Token:
        """Run ``public/auth``; raise RpcError with Deribit's code when refused."""
        grant = params.get("grant_type")
        scope_req = str(params.get("scope") or "")
        session_scoped = any(s.startswith("session:") for s in scope_req.split())
        scope = " ".join(
            [s for s in scope_req.split() if s.startswith("session:")]
            or ["connection"]
        ) + " trade:read_write account:read_write wallet:read mainaccount"
        bound = None if session_scoped else connection
        if grant == "client_credentials":
            cid, secret = params.get("client_id"), params.get("client_secret")
            if not isinstance(cid, str) or not isinstance(secret, str):
                raise RpcError(-32602, "Invalid params", {"reason": "value required", "param": "client_secret" if isinstance(cid, str) else "client_id"})
            if self.keys.get(cid) is None or not hmac.compare_digest(self.keys[cid], secret):
                raise RpcError(13004, "invalid_credentials")
            return self._issue(cid, now, bound, scope)
        if grant == "client_signature":
            cid = params.get("client_id")
            ts = params.get("timestamp")
            sig = params.get("signature")
            nonce = params.get("nonce", "")
            data = params.get("data", "")
            for name, value in (("client_id", cid), ("timestamp", ts), ("signature", sig)):
                if value is None:
                    raise RpcError(-32602, "Invalid params", {"reason": "value required", "param": name})
            if not isinstance(ts, int) or isinstance(ts, bool):
                raise RpcError(-32602, "Invalid params", {"reason": "must be an integer", "param": "timestamp"})
            if not isinstance(cid, str) or cid not in self.keys:
                raise RpcError(13004, "invalid_credentials")
            # Compare in integers: a timestamp like 10**400 does not fit a float.
            if abs(int(now * 1000) - ts) > int(self.signature_window * 1000):
                raise RpcError(13009, "unauthorized", {"reason": "timestamp is out of the allowed window", "param": "timestamp"})
            expected = sign(self.keys[cid], ts, str(nonce), str(data))
            if not isinstance(sig, str) or not hmac.compare_digest(expected, sig.lower()):
                raise RpcError(13004, "invalid_credentials")
            return self._issue(cid, now, bound, scope)
        if grant == "refresh_token":
            old = self.refresh_tokens.pop(str(params.get("refresh_token")), None)
            if old is None:
                raise RpcError(13009, "unauthorized", {"reason": "invalid_token", "param": "refresh_token"})
            self.tokens.pop(old.access_token, None)
            return self._issue(old.client_id, now, connection if old.connection is not None else None, old.scope)
        raise RpcError(-32602, "Invalid params", {"reason": "wrong format", "param": "grant_type"})

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

    # ---------------------------------------------------------------- orders

    def place(self, client_id: str, connection: int, direction: str, params: dict[str, Any], now_ms: int) -> Order:
        """Create an order (private/buy, private/sell). Limit orders rest; market orders fill."""
        order_type = str(params.get("type", "limit"))
        price = params.get("price")
        order = Order(
            order_id=f"EMU-{next(self._order_ids)}",
            client_id=client_id,
            connection=connection,
            instrument_name=str(params["instrument_name"]),
            direction=direction,
            amount=params["amount"],
            price=price,
            order_type=order_type,
            label=str(params.get("label", "")),
            created_ms=now_ms,
            updated_ms=now_ms,
            post_only=bool(params.get("post_only", False)),
            reduce_only=bool(params.get("reduce_only", False)),
        )
        if order_type == "market":
            order.state = "filled"
            order.filled_amount = order.amount
        self.orders[order.order_id] = order
        return order

    def cancel(self, client_id: str, order_id: str, now_ms: int) -> Order | None:
        """Cancel one open order of ``client_id``; None if there is no such open order."""
        order = self.orders.get(order_id)
        if order is None or order.client_id != client_id or order.state != "open":
            return None
        order.state = "cancelled"
        order.updated_ms = now_ms
        return order

    def cancel_where(self, now_ms: int, *, client_id: str | None = None, connection: int | None = None, instrument: str | None = None) -> list[Order]:
        """Cancel every open order matching the filters; return them."""
        done = []
        for order in self.orders.values():
            if order.state != "open":
                continue
            if client_id is not None and order.client_id != client_id:
                continue
            if connection is not None and order.connection != connection:
                continue
            if instrument is not None and order.instrument_name != instrument:
                continue
            order.state = "cancelled"
            order.updated_ms = now_ms
            done.append(order)
        return done

    def open_orders(self, client_id: str, instrument: str | None = None) -> list[Order]:
        """Open orders of an account (optionally of one instrument), oldest first."""
        return [
            o for o in self.orders.values()
            if o.client_id == client_id and o.state == "open" and (instrument is None or o.instrument_name == instrument)
        ]
