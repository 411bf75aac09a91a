"""The exchange state without sockets: signatures, tokens, orders."""

from __future__ import annotations

import pytest

from drbfast.emulator.errors import RpcError
from drbfast.emulator.exchange import Exchange, sign


def make() -> Exchange:
    return Exchange(keys={"id": "AMANDASECRECT"}, token_ttl=100.0, signature_window=60.0)


def test_signature_matches_the_documented_vector() -> None:
    # PROTOCOL.md 5.1: the docs' worked example, recomputed.
    assert sign("AMANDASECRECT", 1576074319000, "1iqt2wls", "") == (
        "56590594f97921b09b18f166befe0d1319b198bbcdad7ca73382de2f88fe9aa1"
    )


def test_signature_auth_window_and_tokens_bound_to_connection() -> None:
    ex = make()
    now = 1576074319.0
    params = {"grant_type": "client_signature", "client_id": "id", "timestamp": 1576074319000,
              "nonce": "1iqt2wls", "data": "", "signature": sign("AMANDASECRECT", 1576074319000, "1iqt2wls")}
    token = ex.authenticate(params, now, connection=1)
    assert ex.token(token.access_token, now, 1) is token
    assert ex.token(token.access_token, now, 2) is None, "connection-scoped"
    assert ex.token(token.access_token, now + 101, 1) is None, "expired"
    with pytest.raises(RpcError) as info:
        ex.authenticate(params, now + 61, connection=1)
    assert info.value.code == 13009
    with pytest.raises(RpcError) as info:
        ex.authenticate({**params, "signature": "0" * 64}, now, connection=1)
    assert info.value.code == 13004
    assert "AMANDA" not in repr(ex) and token.access_token not in repr(token)


def test_session_scope_tokens_survive_the_connection() -> None:
    ex = make()
    token = ex.authenticate({"grant_type": "client_credentials", "client_id": "id", "client_secret": "AMANDASECRECT",
                             "scope": "session:bot"}, 0.0, connection=1)
    ex.revoke_connection(1)
    assert ex.token(token.access_token, 1.0, 7) is token


def test_orders_and_cancel_filters() -> None:
    ex = make()
    a = ex.place("id", 1, "buy", {"instrument_name": "BTC-PERPETUAL", "amount": 10, "price": 5}, 0)
    b = ex.place("id", 2, "sell", {"instrument_name": "BTC-PERPETUAL", "amount": 10, "price": 9}, 0)
    m = ex.place("id", 1, "buy", {"instrument_name": "BTC-PERPETUAL", "amount": 1, "type": "market"}, 0)
    assert m.state == "filled"
    assert ex.cancel_where(1, connection=1) == [a]
    assert ex.open_orders("id") == [b]
    assert ex.cancel("other", b.order_id, 1) is None
    assert ex.cancel("id", b.order_id, 1) is b and b.state == "cancelled"
