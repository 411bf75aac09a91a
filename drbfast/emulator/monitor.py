"""What the emulator says about itself: the events log (what faults and limits did:
closes with code and reason, test_request answer times, missed deadlines, drops, 429s;
``drbfast emulator`` prints it) and the count of bugs it caught and survived."""

from __future__ import annotations

import logging
from typing import Any

__all__ = ["Monitor", "events_log", "log"]

log = logging.getLogger("drbfast.emulator")
#: What faults and limits did: the CLI prints this logger at INFO.
events_log = logging.getLogger("drbfast.emulator.events")


class Monitor:
    """One emulator's report: :meth:`event` for what a fault or limit did, :meth:`bug`
    for a handler, frame or market tick that raised (logged with its traceback, counted
    in ``handler_errors``; the emulator keeps serving)."""

    def __init__(self) -> None:
        #: requests, frames and market ticks whose handling raised (bugs)
        self.handler_errors = 0

    def event(self, fmt: str, *args: Any) -> None:
        """Report what a fault or a limit did (the CLI prints these)."""
        if events_log.isEnabledFor(logging.INFO):
            events_log.info(fmt, *args)

    def bug(self, fmt: str, *args: Any) -> None:
        """Log the exception being handled with ``fmt % args`` and count it."""
        log.exception(fmt, *args)
        self.handler_errors += 1
