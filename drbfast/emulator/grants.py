"""The ``coinbase_cdp`` grant of Coinbase's Deribit gateway (PROTOCOL.md 5.1): checking a
CDP JWT against the keys the emulator knows, and making test keys. The exchange calls
:func:`verify_grant` from ``public/auth``; ``Emulator.add_cdp_key`` calls
:func:`make_cdp_key`."""

from __future__ import annotations

import secrets
from typing import Any

from .errors import RpcError

__all__ = ["make_cdp_key", "verify_grant"]


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
