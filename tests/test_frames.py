"""drbfast.frames: the prebuilt ``public/test`` and the engine id scheme."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drbfast import frames
from drbfast._classify import classify, classify_detail
from drbfast.frames import (
    ENGINE_ID_PREFIX,
    SEQ_DIGITS,
    SEQ_OFFSET,
    TEST_TEMPLATE,
    build_test_template,
    engine_id,
    is_engine_id,
)
from drbfast.kinds import Kind

# What every Deribit client sends to answer a test_request (PROTOCOL.md 1.3), with the
# engine's string id (ARCHITECTURE.md, "Engine ids").
EXPECTED = {"jsonrpc": "2.0", "id": "~drbfast~000000000000", "method": "public/test", "params": {}}


def patched(seq: int) -> bytes:
    """The template with ``seq`` written into its digits, as the listener does it."""
    out = bytearray(TEST_TEMPLATE)
    out[SEQ_OFFSET:SEQ_OFFSET + SEQ_DIGITS] = b"%012d" % (seq % 10**SEQ_DIGITS)
    return bytes(out)


def test_template_is_the_expected_request() -> None:
    assert isinstance(TEST_TEMPLATE, bytes)
    assert json.loads(TEST_TEMPLATE) == EXPECTED
    # compact, ASCII, and the key order a server log would show for any client
    assert TEST_TEMPLATE == b'{"jsonrpc":"2.0","id":"~drbfast~000000000000","method":"public/test","params":{}}'
    TEST_TEMPLATE.decode("ascii")


def test_offset_points_at_twelve_zero_digits() -> None:
    assert SEQ_DIGITS == 12
    assert TEST_TEMPLATE[SEQ_OFFSET:SEQ_OFFSET + SEQ_DIGITS] == b"0" * 12
    assert TEST_TEMPLATE[SEQ_OFFSET - len(ENGINE_ID_PREFIX):SEQ_OFFSET] == ENGINE_ID_PREFIX.encode()
    assert TEST_TEMPLATE[SEQ_OFFSET + SEQ_DIGITS:SEQ_OFFSET + SEQ_DIGITS + 1] == b'"'
    # the only run of digits in the template that is not "2.0"
    assert TEST_TEMPLATE.count(b"000000000000") == 1


def test_build_is_deterministic_and_matches_the_module_constants() -> None:
    assert build_test_template() == (TEST_TEMPLATE, SEQ_OFFSET)
    assert build_test_template() == build_test_template()


@pytest.mark.parametrize("seq", [0, 1, 9, 10, 123456, 10**12 - 1])
def test_patched_template_carries_engine_id(seq: int) -> None:
    msg = json.loads(patched(seq))
    assert msg == {**EXPECTED, "id": engine_id(seq)}
    assert len(patched(seq)) == len(TEST_TEMPLATE)


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 10**13))
def test_patched_template_any_seq(seq: int) -> None:
    msg = json.loads(patched(seq))
    assert msg["id"] == engine_id(seq)
    assert is_engine_id(msg["id"])
    # Deribit echoes the id verbatim: the echo is the engine's TEST_REPLY, with its seq.
    reply = json.dumps({"jsonrpc": "2.0", "id": msg["id"], "result": "ok"}).encode()
    assert classify(reply) == Kind.TEST_REPLY
    assert classify_detail(reply) == (Kind.TEST_REPLY, False, seq % 10**12)
    # and the request itself (it has a method) is never heartbeat traffic
    assert classify(patched(seq)) == Kind.OTHER


def test_engine_id() -> None:
    assert ENGINE_ID_PREFIX == "~drbfast~"
    assert engine_id(0) == "~drbfast~000000000000"
    assert engine_id(1) == "~drbfast~000000000001"
    assert engine_id(987654321) == "~drbfast~000987654321"
    assert engine_id(10**12 - 1) == "~drbfast~999999999999"
    assert engine_id(10**12) == engine_id(0), "wraps at 10**12"
    assert engine_id(10**12 + 5) == engine_id(5)
    assert all(len(engine_id(s)) == len(ENGINE_ID_PREFIX) + SEQ_DIGITS for s in (0, 5, 10**12 - 1, 10**15))


def test_is_engine_id() -> None:
    assert is_engine_id(engine_id(0))
    assert is_engine_id(engine_id(42))
    assert is_engine_id("~drbfast~")  # the prefix alone is reserved too
    assert is_engine_id("~drbfast~anything")
    for other in (7, 0, None, 1.5, "", "drbfast", "~drbfast", "~Drbfast~1", " ~drbfast~1", "x~drbfast~1",
                  b"~drbfast~000000000001", ["~drbfast~1"], {"id": "~drbfast~1"}):
        assert not is_engine_id(other), other


def test_public_names() -> None:
    assert set(frames.__all__) == {"ENGINE_ID_PREFIX", "NOTIFICATION_PREFIX", "SEQ_DIGITS", "SEQ_OFFSET",
                                   "TEST_TEMPLATE", "build_notification_prefix", "build_test_template",
                                   "engine_id", "is_engine_id"}
