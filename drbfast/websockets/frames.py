"""``websockets.frames`` names the drop-in uses: :class:`Close`, :class:`CloseCode`."""

from __future__ import annotations

import enum
from dataclasses import dataclass

__all__ = ["CLOSE_CODE_EXPLANATIONS", "OK_CLOSE_CODES", "Close", "CloseCode", "Opcode"]


class Opcode(enum.IntEnum):
    """WebSocket frame opcodes (RFC 6455 5.2)."""

    CONT, TEXT, BINARY = 0x00, 0x01, 0x02
    CLOSE, PING, PONG = 0x08, 0x09, 0x0A


class CloseCode(enum.IntEnum):
    """Close codes (RFC 6455 7.4.1), with websockets' member names."""

    NORMAL_CLOSURE = 1000
    GOING_AWAY = 1001
    PROTOCOL_ERROR = 1002
    UNSUPPORTED_DATA = 1003
    NO_STATUS_RCVD = 1005
    ABNORMAL_CLOSURE = 1006
    INVALID_DATA = 1007
    POLICY_VIOLATION = 1008
    MESSAGE_TOO_BIG = 1009
    MANDATORY_EXTENSION = 1010
    INTERNAL_ERROR = 1011
    SERVICE_RESTART = 1012
    TRY_AGAIN_LATER = 1013
    BAD_GATEWAY = 1014
    TLS_HANDSHAKE = 1015


CLOSE_CODE_EXPLANATIONS: dict[int, str] = {
    1000: "OK", 1001: "going away", 1002: "protocol error", 1003: "unsupported data",
    1005: "no status received [internal]", 1006: "abnormal closure [internal]",
    1007: "invalid frame payload data", 1008: "policy violation", 1009: "message too big",
    1010: "mandatory extension", 1011: "internal error", 1012: "service restart",
    1013: "try again later", 1014: "bad gateway", 1015: "TLS handshake failure [internal]",
}

#: Codes that end a connection normally: ``ConnectionClosedOK`` when both sides' are here.
OK_CLOSE_CODES = frozenset({1000, 1001, 1005})


@dataclass(frozen=True)
class Close:
    """A close frame's ``code`` and ``reason``; ``str()`` as ``websockets.frames.Close``
    (``"1000 (OK) bye"``), the format users grep their logs for."""

    code: int
    reason: str

    def __str__(self) -> str:
        if 3000 <= self.code < 4000:
            explanation = "registered"
        elif 4000 <= self.code < 5000:
            explanation = "private use"
        else:
            explanation = CLOSE_CODE_EXPLANATIONS.get(self.code, "unknown")
        text = f"{self.code} ({explanation})"
        return f"{text} {self.reason}" if self.reason else text
