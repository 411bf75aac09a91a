"""drbfast.websockets, the drop-in for `websockets`, running websockets_client.py's user
code unchanged (``--codec json|orjson``): only the import differs, so the row shows what
switching buys. Its listener answers test_requests below ``recv()``, so the user code's
own heartbeat branch never runs here."""

from __future__ import annotations

import argparse

from drbfast import websockets

from .common import run
from .websockets_client import consume


async def main(args: argparse.Namespace) -> int:
    return await consume(websockets, args)


if __name__ == "__main__":
    run(main)
