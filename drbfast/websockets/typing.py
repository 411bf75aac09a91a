"""``websockets.typing`` names."""

from __future__ import annotations

import http
import logging
from typing import Any, NewType

__all__ = ["Data", "ExtensionName", "ExtensionParameter", "LoggerLike", "Origin", "StatusLike", "Subprotocol"]

Data = str | bytes
LoggerLike = logging.Logger | logging.LoggerAdapter[Any]
StatusLike = http.HTTPStatus | int
Origin = NewType("Origin", str)
Subprotocol = NewType("Subprotocol", str)
ExtensionName = NewType("ExtensionName", str)
ExtensionParameter = tuple[str, str | None]
