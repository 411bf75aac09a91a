"""client_signature and credentials that never print."""

from __future__ import annotations

from drbfast.auth import Credentials, auth_params, refresh_params, sign


def test_documented_signature_vector() -> None:
    # PROTOCOL.md 5.1 (OLD #signature-credentials-websocket-api), recomputed there.
    assert sign("AMANDASECRECT", 1576074319000, "1iqt2wls", "") == "56590594f97921b09b18f166befe0d1319b198bbcdad7ca73382de2f88fe9aa1"


def test_signature_params_do_not_carry_the_secret() -> None:
    creds = Credentials("id", "AMANDASECRECT")
    p = auth_params(creds, "signature", now_ms=1576074319000, nonce="1iqt2wls")
    assert p == {"grant_type": "client_signature", "client_id": "id", "timestamp": 1576074319000, "nonce": "1iqt2wls",
                 "data": "", "signature": "56590594f97921b09b18f166befe0d1319b198bbcdad7ca73382de2f88fe9aa1"}
    assert "AMANDASECRECT" not in repr(p)
    assert auth_params(creds, "credentials", scope="session:x")["scope"] == "session:x"
    assert refresh_params("r") == {"grant_type": "refresh_token", "refresh_token": "r"}


def test_credentials_repr_hides_the_secret() -> None:
    creds = Credentials("id", "s3cr3t")
    assert "s3cr3t" not in repr(creds) and "s3cr3t" not in str(creds)
