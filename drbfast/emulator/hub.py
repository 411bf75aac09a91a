"""The publication hub: who is subscribed to which channel, and what they are sent.

Requests subscribe and unsubscribe through it (it is the ``ctx.hub`` of handlers); after
each request, and on every market tick (:meth:`Hub.tick`, run by :meth:`Hub.market_pump`),
it turns what the exchange did into notifications: ``user.*`` for orders, trades, positions
and portfolios, ``trades.*``, ``book.*`` changes, tickers, quotes and the other periodic
channels.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from typing import Any

from .channels import Channel
from .exchange import Exchange
from .market import Market, notification
from .monitor import Monitor
from .server import Connection

__all__ = ["Hub"]


class Hub:
    """Subscriptions and publication over one exchange."""

    def __init__(self, exchange: Exchange, monitor: Monitor) -> None:
        self.exchange = exchange
        self.monitor = monitor
        #: channel name -> its live subscribers
        self.subscribers: dict[str, set[Connection]] = {}
        #: channel name -> the parsed channel, for every channel someone holds
        self.channels: dict[str, Channel] = {}
        self._tick = 0
        self._last_ticker: dict[str, dict[str, Any]] = {}
        self._last_quote: dict[str, Any] = {}

    def __repr__(self) -> str:
        return f"Hub(channels={len(self.channels)})"

    @property
    def market(self) -> Market:
        return self.exchange.market

    def forget(self, conn: Connection) -> None:
        """A connection is gone: drop every subscription it held."""
        for channel in list(conn.subscriptions):
            self.unsubscribe(conn, channel)

    def subscribe(self, session: Any, channel: Channel, label: str | None) -> Callable[[], None] | None:
        """Subscribe; return what to send right after the response (a snapshot), if any."""
        conn = session
        if not isinstance(conn, Connection) or channel.name in conn.subscriptions:
            return None  # held already: acked, but no new snapshot (PROTOCOL.md 4.3)
        conn.subscriptions.add(channel.name)
        if label:
            conn.labels[channel.name] = label
        self.subscribers.setdefault(channel.name, set()).add(conn)
        self.channels[channel.name] = channel
        now_ms = int(time.time() * 1000)
        first: bytes | None = None
        if channel.family == "book" and channel.instrument is not None:
            stream = "raw" if channel.interval == "raw" else "agg"
            name = channel.instrument.name
            bids, asks = self.exchange.books[name].snapshot_levels(stream)
            first = notification(channel.name, {
                "timestamp": now_ms, "type": "snapshot", "change_id": self.exchange.stream_ids[name, stream],
                "instrument_name": name, "bids": bids, "asks": asks})
        elif channel.family == "incremental_ticker" and channel.instrument is not None:
            last = self._last_ticker.get(channel.name)
            if last is None:
                last = self._last_ticker[channel.name] = self.market.ticker(channel.instrument, now_ms, stats=True)
            first = notification(channel.name, {**last, "type": "snapshot"})
        if first is None:
            return None
        snap = first
        delay = conn.hook.snapshot_delay if conn.hook is not None else 0.0

        def send_snapshot() -> None:
            if delay > 0:
                # A fault: the snapshot comes later than the subscribe reply (on a
                # client, the reply may overtake changes queued before the snapshot).
                asyncio.get_running_loop().call_later(delay, conn.send, snap)
            else:
                conn.send(snap)
        return send_snapshot

    def unsubscribe(self, session: Any, name: str) -> bool:
        conn = session
        if not isinstance(conn, Connection) or name not in conn.subscriptions:
            return False
        conn.subscriptions.discard(name)
        conn.labels.pop(name, None)
        subs = self.subscribers.get(name)
        if subs is not None:
            subs.discard(conn)
            if not subs:
                del self.subscribers[name]
                self.channels.pop(name, None)
                self._last_ticker.pop(name, None)
        return True

    def _send(self, name: str, data: Any, account: str | None = None) -> None:
        subs = self.subscribers.get(name)
        if not subs:
            return
        frame: bytes | None = None
        for conn in list(subs):
            if account is not None and conn.client_id != account:
                continue
            if name in conn.paused:
                continue
            label = conn.labels.get(name)
            if label is not None:
                conn.send(notification(name, data, label))
                continue
            if frame is None:
                frame = notification(name, data)
            conn.send(frame)

    def publish_events(self) -> None:
        """Tell subscribers what the exchange did since the last call (orders, trades,
        positions, portfolios: user.* channels; public trades: trades.*)."""
        events = self.exchange.drain()
        now_ms = int(time.time() * 1000)
        self._publish_raw_books(now_ms)
        if not events:
            return
        touched: dict[tuple[str, str], dict[str, Any]] = {}
        for ev in events:
            inst = self.exchange.instruments[ev.instrument]
            if ev.kind == "trades":
                for name, ch in list(self.channels.items()):
                    if ch.family == "trades" and ch.matches(inst):
                        self._send(name, ev.data)
                continue
            assert ev.account is not None
            slot = touched.setdefault((ev.account, ev.instrument), {"orders": {}, "trades": []})
            if ev.kind == "order":
                slot["orders"][ev.data.order_id] = ev.data
                data = ev.data.as_dict()
                for name, ch in list(self.channels.items()):
                    if ch.family == "user.orders" and ch.matches(inst):
                        self._send(name, data if ch.interval == "raw" else [data], ev.account)
            elif ev.kind == "user_trades":
                slot["trades"].extend(ev.data)
                for name, ch in list(self.channels.items()):
                    if ch.family == "user.trades" and ch.matches(inst):
                        self._send(name, [{k: v for k, v in t.items() if k != "profit_loss"} for t in ev.data],
                                   ev.account)
        for (account, instrument), slot in touched.items():
            inst = self.exchange.instruments[instrument]
            acct = self.exchange.accounts[account]
            wanted = [(n, ch) for n, ch in self.channels.items() if ch.family == "user.changes" and ch.matches(inst)]
            if wanted:
                data = {"instrument_name": instrument,
                        "orders": [o.as_dict() for o in slot["orders"].values()],
                        "positions": [self.exchange.position_dict(acct, inst, now_ms)] if slot["trades"] else [],
                        "trades": slot["trades"]}
                for name, _ in wanted:
                    self._send(name, data, account)
            if slot["trades"]:
                self._send_portfolio(account, inst.currency, now_ms)

    def _publish_raw_books(self, now_ms: int) -> None:
        """``book.{i}.raw``: every change as soon as the request or tick that made it is
        done, each with its own change_id."""
        ex = self.exchange
        for name, book in ex.books.items():
            if not book.dirty("raw"):
                continue
            res = ex.publish_book(name, "raw")
            if res is None:
                continue
            channel = f"book.{name}.raw"
            if channel in self.subscribers:
                prev, cur, bids, asks = res
                self._send(channel, {"timestamp": now_ms, "type": "change", "prev_change_id": prev, "change_id": cur,
                                     "instrument_name": name, "bids": bids, "asks": asks})

    def _send_portfolio(self, account: str, currency: str, now_ms: int) -> None:
        for name, ch in list(self.channels.items()):
            if ch.family == "user.portfolio" and ch.currency in ("any", currency):
                data = self.exchange.portfolio(self.exchange.accounts[account], currency, now_ms)
                self._send(name, data, account)

    async def market_pump(self, period: float) -> None:
        """Every ``period`` seconds, :meth:`tick` (until cancelled)."""
        while True:
            await asyncio.sleep(period)
            try:
                self.tick()
            except Exception:  # the stream must survive a bug in one channel
                self.monitor.bug("market pump failed")

    def tick(self) -> None:
        """One market tick: the flow trades, orders expire, then each subscribed channel
        gets its frame, serialized once for all its subscribers."""
        self._tick += 1
        now_ms = int(time.time() * 1000)
        ex = self.exchange
        ex.market.step(now_ms)
        ex.expire(now_ms)
        self.publish_events()
        changed: dict[str, dict[str, Any]] = {}
        for name in ex.books:
            res = ex.publish_book(name, "agg")
            if res is not None:
                prev, cur, bids, asks = res
                changed[name] = {"timestamp": now_ms, "type": "change", "prev_change_id": prev, "change_id": cur,
                                 "instrument_name": name, "bids": bids, "asks": asks}
        if not self.subscribers:
            return
        slow = self._tick % 10 == 0  # about once a second at the default tick
        for name, ch in list(self.channels.items()):
            inst = ch.instrument
            fam = ch.family
            if fam == "book" and inst is not None:
                if inst.name in changed and ch.interval != "raw":  # raw went out as it happened
                    self._send(name, changed[inst.name])
            elif fam == "book.grouped" and inst is not None:
                if inst.name in changed:
                    self._send(name, self._grouped(ch, now_ms))
            elif fam == "ticker" and inst is not None:
                self._send(name, ex.market.ticker(inst, now_ms))
            elif fam == "incremental_ticker" and inst is not None:
                self._incremental(name, inst, now_ms)
            elif fam == "quote" and inst is not None:
                q = ex.market.quote(inst, now_ms)
                key = (q["best_bid_price"], q["best_ask_price"], q["best_bid_amount"], q["best_ask_amount"])
                if self._last_quote.get(name) != key:
                    self._last_quote[name] = key
                    self._send(name, q)
            elif fam == "perpetual" and inst is not None:
                self._send(name, ex.market.perpetual(inst, now_ms))
            elif not slow:
                continue
            elif fam == "platform_state":
                self._send(name, {"locked": False, "price_index": "btc_usd"})
            elif fam == "platform_state.public_methods_state":
                self._send(name, {"allow_unauthenticated_public_requests": True})
            elif fam == "deribit_price_index" and ch.currency:
                self._send(name, ex.market.index_data(ch.currency, now_ms))
            elif fam == "deribit_price_ranking" and ch.currency:
                self._send(name, ex.market.ranking(ch.currency, now_ms))
            elif fam == "markprice.options" and ch.currency:
                self._send(name, ex.market.mark_prices(ch.currency, now_ms))
            elif fam == "user.portfolio":
                for conn in list(self.subscribers.get(name, ())):
                    if conn.client_id is not None:
                        wanted = ("BTC", "ETH") if ch.currency == "any" else (ch.currency,)
                        for currency in wanted:
                            if currency is not None:
                                conn.send(notification(name, ex.portfolio(ex.accounts[conn.client_id], currency, now_ms),
                                                       conn.labels.get(name)))

    def _grouped(self, ch: Channel, now_ms: int) -> dict[str, Any]:
        """``book.{inst}.{group}.{depth}.{interval}``: the top window as [price, amount]."""
        inst = ch.instrument
        assert inst is not None and ch.depth is not None
        book = self.exchange.books[inst.name]
        step = None if ch.group in (None, "none") else float(ch.group) / (100 if inst.currency == "ETH" else 1)
        out: dict[str, Any] = {"timestamp": now_ms, "change_id": self.exchange.change_ids[inst.name],
                               "instrument_name": inst.name}
        for side, key in (("buy", "bids"), ("sell", "asks")):
            levels = book.levels(side)
            if step is not None:
                grouped: dict[float, float] = {}
                for price, amount in levels:
                    g = (math.floor(price / step) if side == "buy" else math.ceil(price / step)) * step
                    g = round(g, 10)
                    grouped[g] = round(grouped.get(g, 0.0) + amount, 10)
                levels = [[p, a] for p, a in sorted(grouped.items(), reverse=(side == "buy"))]
            out[key] = levels[:ch.depth]
        return out

    def _incremental(self, name: str, inst: Any, now_ms: int) -> None:
        """``incremental_ticker``: only the fields that changed since the last frame."""
        cur = self.market.ticker(inst, now_ms, stats=True)
        last = self._last_ticker.get(name, {})
        diff = {k: v for k, v in cur.items() if last.get(k) != v and k != "timestamp"}
        self._last_ticker[name] = cur
        if diff:
            self._send(name, {**diff, "instrument_name": inst.name, "timestamp": now_ms, "type": "change"})
