"""drbfast.emulator: a local Deribit JSON-RPC v2 server for tests, demos and benchmarks.

    async with Emulator(EmulatorConfig(min_heartbeat=0.2)) as emu:
        ...connect to emu.url...

It enforces heartbeats (4000 "heartbeat close"), cancel-on-disconnect, credits and
Deribit's documented quirks, streams a synthetic market, records every frame and
injects faults (``emu.faults``). ``drbfast emulator --help`` runs it from the shell.
"""

from .config import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, EmulatorConfig
from .exchange import sign
from .faults import Faults, FloodResult
from .server import HEARTBEAT, TEST_REQUEST, Connection, Emulator, Frame

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
    "sign",
]
