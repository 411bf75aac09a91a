"""Coinbase's Deribit gateway, emulated on top of the exchange (``EmulatorConfig(gateway=True)``).

What differs from deribit.com (PROTOCOL.md 1.7, 5.1, 7, and the subscription notes):
two hosts, each with an allowlist; the ``coinbase_cdp`` grant (a CDP JWT, checked here
against the test keys the emulator knows); ~15-minute tokens; a subscribe trimmed to
32 channels. The allowlist is a request hook, so it sits in front of dispatch like the
fault hooks; the grant and the trim live where Deribit's own grants and subscribe do.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any

from .dispatch import Outcome, error_outcome
from .errors import RpcError

__all__ = ["ALLOWLIST_ERROR", "allowlist_hook", "make_cdp_key", "verify_grant"]

#: The wrong host's answer (nemanull's Coinbase note, PROTOCOL.md 7).
ALLOWLIST_ERROR = RpcError(-32601, "method not in allowlist")

#: Subscription methods each host refuses.
_TRADING_REFUSES = frozenset({"public/subscribe", "public/unsubscribe", "public/unsubscribe_all"})


def _refused_on_streams(method: str) -> bool:
    # The streams host serves unauthenticated market data: no private methods, no auth.
    return method.startswith("private/") or method == "public/auth"


def allowlist_hook(session: Any, method: str) -> Callable[[dict[str, Any]], Outcome] | None:
    """Answer -32601 "method not in allowlist" for what the caller's host does not serve."""
    role = getattr(session, "role", "trading")
    refused = method in _TRADING_REFUSES if role == "trading" else _refused_on_streams(method)
    if not refused:
        return None
    return lambda msg: error_outcome(msg, ALLOWLIST_ERROR)


def make_cdp_key(kind: str = "ec") -> tuple[str, str, Any]:
    """A test CDP API key: ``(key_name, private_key_pem, public_key)``; ``kind`` is
    "ec" (P-256, ES256) or "ed25519"."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519

    if kind not in ("ec", "ed25519"):
        raise ValueError("kind must be 'ec' or 'ed25519'")
    key: Any = ec.generate_private_key(ec.SECP256R1()) if kind == "ec" else ed25519.Ed25519PrivateKey.generate()
    name = f"organizations/emulator/apiKeys/{secrets.token_hex(8)}"
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    return name, pem, key.public_key()


def verify_grant(params: dict[str, Any], keys: dict[str, Any], now: float) -> str:
    """The key name a ``coinbase_cdp`` grant proves, or RpcError 13009 saying why not."""
    from ..cdp import verify_cdp_jwt
    from ..errors import AuthenticationError

    token = params.get("token")
    if not isinstance(token, str):
        raise RpcError(-32602, "Invalid params", {"reason": "value required", "param": "token"})
    try:
        claims = verify_cdp_jwt(token, keys, now=now)
    except AuthenticationError as exc:
        raise RpcError(13009, "unauthorized", exc.data) from None
    return str(claims["sub"])
