"""Deribit authentication: the client_signature recipe and credentials that never print.

PROTOCOL.md 5.1: ``StringToSign = timestamp + "\\n" + nonce + "\\n" + data`` and the
signature is the lowercase hex HMAC-SHA256 of it keyed by the client secret. With
``client_signature`` the secret never goes on the wire.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = ["Credentials", "auth_params", "refresh_params", "sign"]

Grant = Literal["signature", "credentials", "coinbase_cdp"]


def sign(secret: str, timestamp: int, nonce: str, data: str = "") -> str:
    """Signature of ``timestamp`` (ms), ``nonce`` and ``data`` with ``secret``."""
    msg = f"{timestamp}\n{nonce}\n{data}".encode()
    return hmac.new(secret.encode(), msg, hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class Credentials:
    """An API key pair. ``repr`` and ``str`` never show the secret."""

    client_id: str
    client_secret: str = field(repr=False)

    def __str__(self) -> str:
        return f"Credentials(client_id={self.client_id!r})"


def auth_params(creds: Credentials, grant: Grant = "signature", scope: str | None = None, *, now_ms: int | None = None, nonce: str | None = None) -> dict[str, Any]:
    """``public/auth`` params for ``grant``: ``"signature"`` (client_signature, the
    default), ``"credentials"`` (client_credentials: the secret is sent) or
    ``"coinbase_cdp"`` (Coinbase's gateway: a CDP JWT signed with the private key)."""
    params: dict[str, Any]
    if grant == "signature":
        ts = int(time.time() * 1000) if now_ms is None else now_ms
        nonce = secrets.token_hex(8) if nonce is None else nonce
        params = {
            "grant_type": "client_signature",
            "client_id": creds.client_id,
            "timestamp": ts,
            "nonce": nonce,
            "data": "",
            "signature": sign(creds.client_secret, ts, nonce, ""),
        }
    elif grant == "credentials":
        params = {"grant_type": "client_credentials", "client_id": creds.client_id, "client_secret": creds.client_secret}
    elif grant == "coinbase_cdp":
        # Coinbase's gateway: client_id is the CDP key name, client_secret its private
        # key; a fresh two-minute JWT is signed for every authentication.
        from .cdp import build_cdp_jwt

        params = {"grant_type": "coinbase_cdp", "token": build_cdp_jwt(creds.client_id, creds.client_secret)}
    else:
        raise ValueError(f"auth must be 'signature', 'credentials' or 'coinbase_cdp', not {grant!r}")
    if scope:
        params["scope"] = scope
    return params


def refresh_params(refresh_token: str) -> dict[str, Any]:
    """``public/auth`` params that trade a refresh token for a new token pair."""
    return {"grant_type": "refresh_token", "refresh_token": refresh_token}
