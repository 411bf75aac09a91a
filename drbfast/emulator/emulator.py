"""The emulator as one object: :class:`Emulator` builds the parts, each with one job, and
wires them together; it does no work of its own.

========== ============================ ==============================================
attribute  part                         job
========== ============================ ==============================================
config     :class:`.EmulatorConfig`     the emulator's own copy of the settings
monitor    :class:`.monitor.Monitor`    the events log and the count of bugs caught
exchange   :class:`.exchange.Exchange`  keys, tokens, accounts, books, the market
hub        :class:`.hub.Hub`            subscriptions, publication, the market tick
env        :class:`.dispatch.Environment` what a request runs against (and middleware)
faults     :class:`.faults.Faults`      fault injection
server     :class:`.server.Server`      sockets: the HTTP front, WebSocket connections
========== ============================ ==============================================
"""

from __future__ import annotations

import asyncio
import copy
import ssl
import time
from typing import Any

from ..ratelimit import Credits
from .accounts import IpCredits, RateLimits
from .allowlist import allowlist_hook
from .config import EmulatorConfig
from .dispatch import Environment, RequestHook
from .exchange import Exchange
from .faults import Faults
from .grants import make_cdp_key
from .hub import Hub
from .market import Market
from .monitor import Monitor
from .server import Connection, Server

__all__ = ["Emulator"]


def _own_config(config: EmulatorConfig | None, overrides: dict[str, Any]) -> EmulatorConfig:
    """A copy of ``config`` (or of the defaults) with ``overrides`` applied: the caller's
    object, its key and CDP key dicts included, is never changed."""
    cfg = copy.copy(config) if config is not None else EmulatorConfig()
    cfg.extra_keys = dict(cfg.extra_keys)
    cfg.cdp_keys = dict(cfg.cdp_keys)
    for key, value in overrides.items():
        if not hasattr(cfg, key):
            raise TypeError(f"EmulatorConfig has no field {key!r}")
        setattr(cfg, key, value)
    return cfg


class Emulator:
    """A local Deribit on 127.0.0.1. Use as ``async with Emulator(config) as emu:``.

    ``config`` is copied (``**overrides`` are applied to the copy; ``emu.config`` is the
    copy). ``emu.url`` is the endpoint (``emu.http_url`` the HTTP API);
    ``emu.connections`` the live server-side connections (newest last), ``emu.history``
    every connection ever accepted; ``emu.exchange`` the accounts, orders, books and
    tokens; ``emu.faults`` the fault-injection controls; ``emu.hub`` the subscriptions.
    """

    def __init__(self, config: EmulatorConfig | None = None, **overrides: Any) -> None:
        cfg = self.config = _own_config(config, overrides)
        self.monitor = Monitor()
        self.limits = RateLimits(
            non_matching=Credits(cfg.credit_cost, cfg.credit_cap, cfg.credit_refill),
            matching=Credits(cfg.matching_cost, cfg.matching_cap, cfg.matching_refill),
            subscribe=Credits(cfg.subscribe_cost, cfg.subscribe_cap, cfg.subscribe_refill))
        keys = {cfg.client_id: cfg.client_secret, **cfg.extra_keys}
        self.exchange = Exchange(keys, cfg.token_ttl, cfg.signature_window, seed=cfg.seed, limits=self.limits,
                                 now_ms=int(time.time() * 1000))
        self.exchange.market.taker_rate = cfg.taker_rate
        self.hub = Hub(self.exchange, self.monitor)
        self.env = Environment(self.exchange, cfg, self.hub, IpCredits(self.limits), self.monitor)
        self.server = Server(self.env, reject_handshake=self._reject_handshake, on_close=self._connection_closed)
        self.faults = Faults(self.env, lambda: self.server.connections)
        if cfg.gateway:
            self.env.hooks.append(allowlist_hook)
            self.exchange.cdp_keys = cfg.cdp_keys
            self.exchange.cdp_token_ttl = cfg.gateway_token_ttl
        self._pump: asyncio.Task[None] | None = None

    def __repr__(self) -> str:
        return f"Emulator(url={self.url!r}, connections={len(self.connections)})"

    # ------------------------------------------------------------ wiring

    def _reject_handshake(self) -> bool:
        return self.faults.take_handshake_rejection()

    def _connection_closed(self, conn: Connection) -> None:
        """What a connection leaves behind: its subscriptions, its orders when it asked
        for cancel-on-disconnect, and its connection-scoped tokens."""
        self.hub.forget(conn)
        if conn.cod and not conn.logged_out and conn.client_id is not None:
            # Cancel-on-disconnect, connection scope: only orders placed through it.
            cancelled = self.exchange.cancel_where(int(time.time() * 1000), connection=conn.id)
            if cancelled:
                self.monitor.event("connection %d: cancel-on-disconnect cancelled %d orders", conn.id, len(cancelled))
            self.hub.publish_events()
        self.exchange.revoke_connection(conn.id)

    # ------------------------------------------------------------ lifecycle

    async def start(self) -> Emulator:
        """Start listening (port 0 picks a free one) and the market streams."""
        await self.server.start()
        self._pump = asyncio.get_running_loop().create_task(self.hub.market_pump(self.config.tick_interval))
        return self

    async def stop(self) -> None:
        """Close every connection and stop listening."""
        if self._pump is not None:
            self._pump.cancel()
            try:
                await self._pump
            except asyncio.CancelledError:
                pass
        await self.server.stop()

    async def __aenter__(self) -> Emulator:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # ------------------------------------------------------------ the parts' figures, by their old names

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def streams_url(self) -> str:
        """Gateway mode: the market-data host (``url`` is the trading host)."""
        return self.server.streams_url

    @property
    def http_url(self) -> str:
        """Base of the HTTP API, e.g. ``http://127.0.0.1:PORT/api/v2``."""
        return self.server.http_url

    @property
    def port(self) -> int:
        return self.server.port

    @property
    def ca_path(self) -> str | None:
        """With ``tls=True`` and no certificate files: the CA file to trust."""
        return self.server.ca_path

    @property
    def ssl_context(self) -> ssl.SSLContext | None:
        return self.server.ssl_context

    @property
    def client_ssl_context(self) -> ssl.SSLContext | None:
        """An SSL context that trusts the emulator's CA (``tls=True``)."""
        return self.server.client_ssl_context

    @property
    def connections(self) -> list[Connection]:
        return self.server.connections

    @property
    def history(self) -> list[Connection]:
        return self.server.history

    @property
    def market(self) -> Market:
        return self.exchange.market

    @property
    def handler_errors(self) -> int:
        """Requests, frames and market ticks whose handling raised (bugs; answered 11094)."""
        return self.monitor.handler_errors

    @property
    def request_hooks(self) -> list[RequestHook]:
        """The request middleware (``self.env.hooks``): each sees (session, method)
        before dispatch and may return a verdict that answers instead."""
        return self.env.hooks

    def connections_from(self, ip: str) -> int:
        """Open sockets from ``ip``."""
        return self.server.connections_from(ip)

    async def wait_for_connection(self, n: int = 1, timeout: float = 5.0) -> Connection:
        """Wait until ``n`` connections have been accepted in all; return the n-th."""
        return await self.server.wait_for_connection(n, timeout)

    def log_event(self, fmt: str, *args: Any) -> None:
        """Report what a fault or a limit did (the CLI prints these)."""
        self.monitor.event(fmt, *args)

    def publish_events(self) -> None:
        """Tell subscribers what the exchange did since the last call."""
        self.hub.publish_events()

    def add_cdp_key(self, kind: str = "ec") -> tuple[str, str]:
        """Gateway mode: make a test CDP API key the gateway accepts; returns
        ``(key_name, private_key_pem)`` for :func:`drbfast.gateway.connect_coinbase`."""
        name, pem, public = make_cdp_key(kind)
        self.config.cdp_keys[name] = public
        return name, pem
