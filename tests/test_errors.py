"""Deribit's error objects become typed exceptions carrying code, message, data."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest

import drbfast
from drbfast.errors import error_from_reply

SAMPLES = Path(__file__).resolve().parent / "samples"


@pytest.mark.parametrize("code,cls", [(13009, drbfast.Unauthorized), (10000, drbfast.Unauthorized), (13004, drbfast.InvalidCredentials),
                                      (10028, drbfast.TooManyRequests), (-32602, drbfast.InvalidParams), (-32601, drbfast.MethodNotFound),
                                      (11050, drbfast.BadRequest), (-32600, drbfast.BadRequest), (13778, drbfast.RawSubscriptionsNeedAuth),
                                      (11094, drbfast.DeribitError)])
def test_codes_map_to_classes(code: int, cls: type) -> None:
    exc = error_from_reply({"code": code, "message": "m", "data": {"reason": "r"}}, "public/x")
    assert type(exc) is cls and isinstance(exc, drbfast.DrbfastError)
    assert (exc.code, exc.message, exc.data, exc.method) == (code, "m", {"reason": "r"}, "public/x")


def test_real_error_samples() -> None:
    for name in ["error_13778_live.json", "error_11050_invalid_json_live.json", "error_-32602_ccxt_issue_2020.json",
                 "error_13009_ccxt_issue_2021.json", "error_13004_ccxt_issue_2021.json", "error_-32601_live_2025.json"]:
        reply = json.loads((SAMPLES / name).read_text())
        exc = error_from_reply(reply["error"])
        assert exc.code == reply["error"]["code"]
        assert exc.message == reply["error"]["message"]


def test_malformed_error_object_and_pickling() -> None:
    assert error_from_reply("nonsense").code == 0
    exc = error_from_reply({"code": 10028, "message": "too_many_requests"}, "public/test")
    again = pickle.loads(pickle.dumps(exc))
    assert type(again) is drbfast.TooManyRequests and again.code == 10028


def test_hierarchy() -> None:
    assert issubclass(drbfast.ConnectionLost, ConnectionError)
    assert issubclass(drbfast.RequestTimeout, TimeoutError)
    assert issubclass(drbfast.ConfigurationError, ValueError)
    assert issubclass(drbfast.InvalidCredentials, drbfast.AuthenticationError)
