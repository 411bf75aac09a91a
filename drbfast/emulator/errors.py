"""The emulator's error reply: Deribit's code, message and optional data."""

from __future__ import annotations

from typing import Any

__all__ = ["RpcError", "invalid"]


class RpcError(Exception):
    """An error reply: Deribit's ``code``, ``message`` and optional ``data``."""

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(code, message)
        self.code = code
        self.message = message
        self.data = data

    def as_error(self) -> dict[str, Any]:
        # 2025-2026 captures put code first, data before message (PROTOCOL.md 3.3).
        err: dict[str, Any] = {"code": self.code}
        if self.data is not None:
            err["data"] = self.data
        err["message"] = self.message
        return err


def invalid(param: str, reason: str) -> RpcError:
    """-32602 "Invalid params" with production's ``data: {reason, param}`` (PROTOCOL.md 3.3)."""
    return RpcError(-32602, "Invalid params", {"reason": reason, "param": param})
