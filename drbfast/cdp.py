"""Coinbase CDP JWTs: the credential of the ``coinbase_cdp`` grant on Coinbase's
Deribit gateway (PROTOCOL.md 5.1).

A CDP API key is a key name (``organizations/.../apiKeys/...``) and a private key:
an EC P-256 key in PEM (signed ES256) or an Ed25519 key, in PEM or as Coinbase prints
it (base64 of the 32-byte seed, or of seed + public key). The JWT presented at
``public/auth`` has no ``uri`` claim: it authorizes the key itself, for two minutes.

Needs the ``cryptography`` package (``pip install "drbfast[coinbase]"``). Private keys
never appear in errors, reprs or logs.
"""

from __future__ import annotations

import base64
import binascii
import json
import secrets
import time
from typing import Any

from .errors import AuthenticationError, ConfigurationError

__all__ = ["CdpKeyError", "build_cdp_jwt", "load_private_key", "verify_cdp_jwt"]

#: ``iss`` of the JWTs Coinbase's own SDK signs.
ISSUER = "cdp"
#: Lifetime of a signed JWT (Coinbase's SDK uses 120 s).
TTL = 120


class CdpKeyError(ConfigurationError):
    """The CDP private key cannot be read (it is never quoted in the message)."""


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _crypto() -> Any:
    try:
        import cryptography  # noqa: F401
    except ImportError as exc:  # pragma: no cover - the test extra installs it
        raise ConfigurationError("the coinbase_cdp grant needs the cryptography package: "
                                 "pip install \"drbfast[coinbase]\"") from exc
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519

    return serialization, ec, ed25519


def load_private_key(secret: str) -> Any:
    """An EC P-256 or Ed25519 private key from PEM, or Ed25519 from base64."""
    serialization, ec, ed25519 = _crypto()
    text = secret.strip().replace("\\n", "\n")
    if text.startswith("-----BEGIN"):
        try:
            key = serialization.load_pem_private_key(text.encode(), password=None)
        except (ValueError, TypeError) as exc:
            # from None: the parser's message could quote part of the key.
            raise CdpKeyError(f"the CDP private key is not a readable unencrypted PEM key ({type(exc).__name__})") from None
        if isinstance(key, ec.EllipticCurvePrivateKey) and isinstance(key.curve, ec.SECP256R1):
            return key
        if isinstance(key, ed25519.Ed25519PrivateKey):
            return key
        raise CdpKeyError("a CDP key is EC P-256 (ES256) or Ed25519; this PEM holds another kind")
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise CdpKeyError("the CDP private key is neither PEM nor base64") from None
    if len(raw) not in (32, 64):
        raise CdpKeyError("a base64 Ed25519 CDP key holds 32 or 64 bytes")
    return ed25519.Ed25519PrivateKey.from_private_bytes(raw[:32])


def build_cdp_jwt(key_name: str, private_key: str, *, now: float | None = None, ttl: int = TTL) -> str:
    """The JWT for ``public/auth`` with ``grant_type: "coinbase_cdp"``."""
    _, ec, ed25519 = _crypto()
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

    key = load_private_key(private_key)
    alg = "ES256" if isinstance(key, ec.EllipticCurvePrivateKey) else "EdDSA"
    t = int(time.time() if now is None else now)
    header = {"alg": alg, "kid": key_name, "nonce": secrets.token_hex(16), "typ": "JWT"}
    claims = {"sub": key_name, "iss": ISSUER, "nbf": t, "exp": t + ttl}
    signing_input = f"{_b64url(json.dumps(header, separators=(',', ':')).encode())}." \
                    f"{_b64url(json.dumps(claims, separators=(',', ':')).encode())}".encode()
    if alg == "ES256":
        # JWS wants r || s, 32 bytes each (RFC 7518 3.4), not the DER cryptography gives.
        r, s = decode_dss_signature(key.sign(signing_input, ec.ECDSA(hashes.SHA256())))
        signature = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    else:
        signature = key.sign(signing_input)
    return f"{signing_input.decode()}.{_b64url(signature)}"


def verify_cdp_jwt(token: str, public_keys: dict[str, Any], *, now: float | None = None, leeway: float = 5.0) -> dict[str, Any]:
    """Check a CDP JWT against ``public_keys`` (key name -> public key) and return its
    claims; raises :class:`AuthenticationError` (13009) saying why it is refused.
    The emulator's gateway mode uses this; so can a user's own test server."""
    _, ec, ed25519 = _crypto()
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

    def refuse(reason: str) -> AuthenticationError:
        return AuthenticationError(13009, "unauthorized", {"reason": reason, "param": "token"})

    parts = token.split(".") if isinstance(token, str) else []
    if len(parts) != 3:
        raise refuse("malformed_jwt")
    try:
        header = json.loads(_b64url_decode(parts[0]))
        claims = json.loads(_b64url_decode(parts[1]))
        signature = _b64url_decode(parts[2])
    except (ValueError, binascii.Error):
        raise refuse("malformed_jwt") from None
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise refuse("malformed_jwt")
    key = public_keys.get(header.get("kid"))  # type: ignore[arg-type]
    if key is None or claims.get("sub") != header.get("kid"):
        raise refuse("unknown_key")
    signing_input = f"{parts[0]}.{parts[1]}".encode()
    try:
        if header.get("alg") == "ES256" and isinstance(key, ec.EllipticCurvePublicKey) and len(signature) == 64:
            der = encode_dss_signature(int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big"))
            key.verify(der, signing_input, ec.ECDSA(hashes.SHA256()))
        elif header.get("alg") == "EdDSA" and isinstance(key, ed25519.Ed25519PublicKey):
            key.verify(signature, signing_input)
        else:
            raise refuse("bad_algorithm")
    except InvalidSignature:
        raise refuse("bad_signature") from None
    t = time.time() if now is None else now
    nbf, exp = claims.get("nbf"), claims.get("exp")
    if not isinstance(nbf, int) or not isinstance(exp, int):
        raise refuse("malformed_jwt")
    if t + leeway < nbf:
        raise refuse("jwt_not_yet_valid")
    if t - leeway >= exp:
        raise refuse("jwt_expired")
    return claims
