"""``websockets.typing`` names."""

from __future__ import annotations

import http
import logging
from typing import TYPE_CHECKING, Any, NewType, Union

__all__ = ["Data", "ExtensionName", "ExtensionParameter", "LoggerLike", "Origin", "StatusLike", "Subprotocol"]

Data = str | bytes
if TYPE_CHECKING:
    LoggerLike = Union[logging.Logger, logging.LoggerAdapter[Any]]
else:  # LoggerAdapter cannot be subscripted at run time before Python 3.11
    LoggerLike = Union[logging.Logger, logging.LoggerAdapter]
StatusLike = http.HTTPStatus | int
Origin = NewType("Origin", str)
Subprotocol = NewType("Subprotocol", str)
ExtensionName = NewType("ExtensionName", str)
ExtensionParameter = tuple[str, str | None]
