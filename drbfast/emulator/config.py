"""Every knob of the emulator, with production's numbers as defaults (PROTOCOL.md)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

#: The demo API key pair the emulator accepts unless told otherwise. Not a secret: it
#: only opens the local emulator.
DEMO_CLIENT_ID = "drbfast-demo"
DEMO_CLIENT_SECRET = "drbfast-demo-secret"


@dataclass
class EmulatorConfig:
    """How the emulator behaves. Defaults follow production Deribit where it is known."""

    host: str = "127.0.0.1"
    #: 0 picks a free port.
    port: int = 0
    path: str = "/ws/api/v2"
    #: Smallest interval ``public/set_heartbeat`` accepts (production: 10 s). Tests lower it.
    min_heartbeat: float = 10.0
    #: First test_request after ``interval * first_factor`` (production: ~12 s at 10).
    first_factor: float = 1.2
    #: Then one every ``interval * period_factor`` (production: ~10.6 s at 10).
    period_factor: float = 1.06
    #: Unanswered test_request closes the socket after ``interval * deadline_factor``
    #: with 4000 "heartbeat close" (production: 10 s at interval 10).
    deadline_factor: float = 1.0
    #: Drop (1006, no close frame) a connection with no subscription and no heartbeat
    #: that sent nothing for this long: production behind Cloudflare cut such a socket
    #: at ~60 s (PROTOCOL.md 1.6). None: never.
    idle_timeout: float | None = 60.0
    #: Drop any connection that sent nothing for this long (docs: 10 minutes). None: never.
    inactivity_timeout: float | None = 600.0
    #: Simultaneous connections per IP address (WebSocket and HTTP); the next one gets
    #: HTTP 429 at the handshake (PROTOCOL.md 9). None: no limit.
    max_connections_per_ip: int | None = 32
    #: API key pair accepted by both grant types.
    client_id: str = DEMO_CLIENT_ID
    client_secret: str = field(default=DEMO_CLIENT_SECRET, repr=False)
    #: More sub-accounts: {client_id: client_secret}; each has its own orders,
    #: positions and credit pools.
    extra_keys: dict[str, str] = field(default_factory=dict, repr=False)
    #: Lifetime of access tokens (production connection tokens: one year).
    token_ttl: float = 31_536_000.0
    #: client_signature timestamps older (or newer) than this are refused (production: 60 s).
    signature_window: float = 60.0
    #: Credit pools per sub-account (unauthenticated requests: per IP). Non-matching
    #: engine (production defaults: cost 500, cap 50,000, refill 10,000/s). Running out
    #: answers 10028 and closes the session (PROTOCOL.md 9).
    credit_cost: int = 500
    credit_cap: int = 50_000
    credit_refill: float = 10_000.0
    #: Subscribe calls have their own pool (~3.3 calls/s sustained, burst 10).
    subscribe_cost: int = 3_000
    subscribe_cap: int = 30_000
    subscribe_refill: float = 10_000.0
    #: Matching-engine requests (buy, sell, edit, cancel*, close_position): the lowest
    #: tier, 5 requests/s with bursts of 20.
    matching_cost: int = 10_000
    matching_cap: int = 200_000
    matching_refill: float = 50_000.0
    #: WebSocket close after a 10028 reply. Production's code is not documented
    #: (PROTOCOL.md 10), so this is a plain normal closure naming the reason.
    rate_limit_close_code: int = 1000
    #: Probability per tick and instrument that the synthetic flow sends a market
    #: order through the book (it fills resting user orders too).
    taker_rate: float = 0.3
    #: Client frames above this are refused with -32600 and no id (production: 32 kB).
    max_request_size: int = 32 * 1024
    #: Market data: seed for the synthetic market, and the stream period in seconds.
    seed: int = 1
    tick_interval: float = 0.1
    #: Record every frame of every connection (for assertions); off for benchmarks.
    record: bool = True
    #: ``testnet`` field of every response.
    testnet: bool = True
    #: API version reported by public/hello and public/test.
    version: str = "1.2.26"
    #: Negotiate permessage-deflate when the client offers it (production does).
    permessage_deflate: bool = True
    #: Serve Deribit's HTTP API (GET /api/v2/{method}?..., POST /api/v2) on the same port.
    http: bool = True
    #: TLS: serve wss:// and https:// with this certificate and key (PEM paths). With
    #: ``tls=True`` and no files, a CA and a server certificate signed by it (for
    #: 127.0.0.1/localhost) are made at start; ``Emulator.ca_path`` is the CA to trust.
    tls: bool = False
    certfile: str | None = None
    keyfile: str | None = None
    #: Coinbase's Deribit gateway (PROTOCOL.md 1.7, 5.1, 7): two hosts on this port,
    #: the trading one at ``path`` (private methods, ``user.*``, ``private/subscribe``
    #: only), the streams one at ``streams_path`` (market data, ``public/subscribe``
    #: only); the wrong one answers -32601 "method not in allowlist". ``public/auth``
    #: takes ``grant_type: "coinbase_cdp"`` with a CDP JWT signed by a key of
    #: ``cdp_keys`` (key name -> public key; ``Emulator.add_cdp_key`` makes test keys);
    #: tokens last ``gateway_token_ttl``; a subscribe keeps its first
    #: ``gateway_max_channels`` channels and silently drops the rest.
    gateway: bool = False
    streams_path: str = "/streams/ws/api/v2"
    cdp_keys: dict[str, Any] = field(default_factory=dict, repr=False)
    gateway_token_ttl: float = 900.0
    gateway_max_channels: int = 32
