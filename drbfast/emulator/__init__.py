"""drbfast.emulator: a local Deribit JSON-RPC v2 server for tests, demos and benchmarks.

    async with Emulator(EmulatorConfig(min_heartbeat=0.2)) as emu:
        ...connect to emu.url...

It enforces heartbeats (4000 "heartbeat close"), cancel-on-disconnect, per-sub-account
credits and token scopes, and Deribit's documented quirks; it runs a matching engine
per instrument with a synthetic market trading through it, serves the HTTP API on the
same port, records every frame and injects faults (``emu.faults``). See
docs/emulator.md; ``drbfast emulator --help`` runs it from the shell.

The modules are in layers, lowest first (:data:`LAYERS`); a module imports only from its
own layer or a lower one, type-checking and function-level imports included
(tests/test_layers.py walks the imports to hold them to it):

- base: settings, the error reply, the monitor;
- domain: instruments, books, accounts, the market, the exchange, channel names, the
  CDP grant (no sockets, no requests: time is passed in, events come out);
- rpc: a request's context, the handlers, the dispatch pipeline over an explicit
  environment;
- middleware: fault injection, the gateway's allowlist;
- transport: permessage-deflate, TLS, the HTTP front, the WebSocket connections and
  the listening socket;
- root: the publication hub, :class:`Emulator` (which composes the rest), the CLI, and
  this package.
"""

from typing import TYPE_CHECKING, Any

from .config import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, EmulatorConfig

if TYPE_CHECKING:
    from .emulator import Emulator
    from .errors import RpcError
    from .exchange import sign
    from .faults import Faults, FloodResult
    from .server import HEARTBEAT, TEST_REQUEST, Connection, Frame

#: The emulator's layers, lowest first, and the modules of each.
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("base", ("config", "errors", "monitor")),
    ("domain", ("instruments", "book", "accounts", "market", "exchange", "channels", "grants")),
    ("rpc", ("context", "rpc", "dispatch")),
    ("middleware", ("faults", "allowlist")),
    ("transport", ("deflate", "tls", "http", "server")),
    ("root", ("hub", "emulator", "cli", "__init__")),
)

# The server, exchange and market load on first use, so ``drbfast emulator --help``
# and the other subcommands (which import .config/.cli only) start fast.
_LAZY = {"RpcError": "errors", "sign": "exchange", "Faults": "faults", "FloodResult": "faults",
         "HEARTBEAT": "server", "TEST_REQUEST": "server", "Connection": "server", "Emulator": "emulator",
         "Frame": "server"}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value

__all__ = [
    "DEMO_CLIENT_ID",
    "DEMO_CLIENT_SECRET",
    "HEARTBEAT",
    "TEST_REQUEST",
    "Connection",
    "Emulator",
    "EmulatorConfig",
    "Faults",
    "FloodResult",
    "Frame",
    "LAYERS",
    "RpcError",
    "sign",
]
