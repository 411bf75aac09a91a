"""drbfast.emulator: a local Deribit JSON-RPC v2 server for tests, demos and benchmarks.

    async with Emulator(EmulatorConfig(min_heartbeat=0.2)) as emu:
        ...connect to emu.url...

It enforces heartbeats (4000 "heartbeat close"), cancel-on-disconnect, per-sub-account
credits and token scopes, and Deribit's documented quirks; it runs a matching engine
per instrument with a synthetic market trading through it, serves the HTTP API on the
same port, records every frame and injects faults (``emu.faults``). See
docs/emulator.md; ``drbfast emulator --help`` runs it from the shell.
"""

from typing import TYPE_CHECKING, Any

from .config import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, EmulatorConfig

if TYPE_CHECKING:
    from .errors import RpcError
    from .exchange import sign
    from .faults import Faults, FloodResult
    from .server import HEARTBEAT, TEST_REQUEST, Connection, Emulator, Frame

# The server, exchange and market load on first use, so ``drbfast emulator --help``
# and the other subcommands (which import .config/.cli only) start fast.
_LAZY = {"RpcError": "errors", "sign": "exchange", "Faults": "faults", "FloodResult": "faults",
         "HEARTBEAT": "server", "TEST_REQUEST": "server", "Connection": "server", "Emulator": "server",
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
    "RpcError",
    "sign",
]
