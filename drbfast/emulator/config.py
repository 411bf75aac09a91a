"""Every knob of the emulator, with production's numbers as defaults (PROTOCOL.md)."""

from __future__ import annotations

from dataclasses import dataclass, field

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
    #: Close a connection that sent nothing for this long (None: never). Production docs
    #: say 10 minutes; behind Cloudflare an idle socket was cut at ~60 s with 1006.
    idle_timeout: float | None = None
    #: API key pair accepted by both grant types.
    client_id: str = DEMO_CLIENT_ID
    client_secret: str = field(default=DEMO_CLIENT_SECRET, repr=False)
    #: Lifetime of access tokens (production connection tokens: one year).
    token_ttl: float = 31_536_000.0
    #: client_signature timestamps older (or newer) than this are refused (production: 60 s).
    signature_window: float = 60.0
    #: Non-matching-engine credits (production defaults: cost 500, cap 50,000, refill
    #: 10,000/s). Running out answers 10028 and closes the session.
    credit_cost: int = 500
    credit_cap: int = 50_000
    credit_refill: float = 10_000.0
    #: Subscribe calls have their own pool (~3.3 calls/s sustained, burst 10).
    subscribe_cost: int = 3_000
    subscribe_cap: int = 30_000
    subscribe_refill: float = 10_000.0
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
    #: TLS: serve wss:// with this certificate and key (PEM paths). With ``tls=True`` and
    #: no files, a self-signed certificate for 127.0.0.1/localhost is made at start.
    tls: bool = False
    certfile: str | None = None
    keyfile: str | None = None
