"""CDP JWTs for Coinbase's gateway: signed with EC P-256 (ES256) and Ed25519 keys,
verified, refused for every reason they should be, never quoting the key."""

from __future__ import annotations

import base64
import json

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from drbfast import AuthenticationError, ConfigurationError
from drbfast.auth import Credentials, auth_params
from drbfast.cdp import CdpKeyError, build_cdp_jwt, load_private_key, verify_cdp_jwt

NAME = "organizations/org-1/apiKeys/key-1"


def pem(key: object) -> str:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,  # type: ignore[attr-defined]
                             serialization.NoEncryption()).decode()


def keys() -> dict[str, tuple[str, object]]:
    es = ec.generate_private_key(ec.SECP256R1())
    ed = ed25519.Ed25519PrivateKey.generate()
    raw = ed.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption())
    pub = ed.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return {
        "es256-pem": (pem(es), es.public_key()),
        "ed25519-pem": (pem(ed), ed.public_key()),
        "ed25519-b64-64": (base64.b64encode(raw + pub).decode(), ed.public_key()),
        "ed25519-b64-32": (base64.b64encode(raw).decode(), ed.public_key()),
    }


@pytest.mark.parametrize("kind", ["es256-pem", "ed25519-pem", "ed25519-b64-64", "ed25519-b64-32"])
def test_signed_jwt_verifies_with_the_public_key(kind: str) -> None:
    secret, public = keys()[kind]
    token = build_cdp_jwt(NAME, secret, now=1_000_000)
    header = json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))
    assert header["kid"] == NAME and header["alg"] == ("ES256" if kind.startswith("es") else "EdDSA")
    claims = verify_cdp_jwt(token, {NAME: public}, now=1_000_010)
    assert claims["sub"] == NAME and claims["exp"] - claims["nbf"] == 120
    assert "uri" not in claims
    # A PEM pasted with literal "\n" (environment variables) works too.
    if kind.endswith("pem"):
        verify_cdp_jwt(build_cdp_jwt(NAME, secret.replace("\n", "\\n")), {NAME: public})


def test_refusals_say_why() -> None:
    secret, public = keys()["es256-pem"]
    _, other = keys()["es256-pem"]
    token = build_cdp_jwt(NAME, secret, now=1_000_000)
    cases = {
        "bad_signature": lambda: verify_cdp_jwt(token, {NAME: other}, now=1_000_000),
        "unknown_key": lambda: verify_cdp_jwt(token, {"someone-else": public}, now=1_000_000),
        "jwt_expired": lambda: verify_cdp_jwt(token, {NAME: public}, now=1_000_200),
        "jwt_not_yet_valid": lambda: verify_cdp_jwt(token, {NAME: public}, now=999_000),
        "malformed_jwt": lambda: verify_cdp_jwt("a.b", {NAME: public}),
        "bad_algorithm": lambda: verify_cdp_jwt(build_cdp_jwt(NAME, keys()["ed25519-pem"][0]), {NAME: public}),
    }
    for reason, call in cases.items():
        with pytest.raises(AuthenticationError) as info:
            call()
        assert info.value.code == 13009 and info.value.data["reason"] == reason
    tampered = token.split(".")
    tampered[1] = base64.urlsafe_b64encode(json.dumps({"sub": NAME, "iss": "cdp", "nbf": 1, "exp": 2**40}).encode()).rstrip(b"=").decode()
    with pytest.raises(AuthenticationError):
        verify_cdp_jwt(".".join(tampered), {NAME: public}, now=1_000_000)


def test_bad_keys_are_refused_without_quoting_them() -> None:
    bogus = "-----BEGIN PRIVATE KEY-----\nTOPSECRETMATERIAL\n-----END PRIVATE KEY-----\n"
    for secret in (bogus, "not base64 !!", base64.b64encode(b"x" * 40).decode()):
        with pytest.raises(CdpKeyError) as info:
            load_private_key(secret)
        assert "TOPSECRET" not in str(info.value) and info.value.__cause__ is None
        assert isinstance(info.value, ConfigurationError)
    rsa_like = pem(ec.generate_private_key(ec.SECP384R1()))
    with pytest.raises(CdpKeyError, match="P-256"):
        load_private_key(rsa_like)


def test_auth_params_for_the_grant_hide_the_key() -> None:
    secret, public = keys()["ed25519-pem"]
    creds = Credentials(NAME, secret)
    params = auth_params(creds, "coinbase_cdp")
    assert params["grant_type"] == "coinbase_cdp" and set(params) == {"grant_type", "token"}
    verify_cdp_jwt(params["token"], {NAME: public})
    assert secret not in repr(creds) and "PRIVATE" not in str(creds)
