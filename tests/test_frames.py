"""The prebuilt public/test payload and the engine id scheme."""

from __future__ import annotations

import json

from drbfast.frames import ENGINE_ID_PREFIX, SEQ_DIGITS, SEQ_OFFSET, TEST_TEMPLATE, build_test_template, engine_id, is_engine_id


def test_template_is_the_request_every_client_sends() -> None:
    msg = json.loads(TEST_TEMPLATE)
    assert msg == {"jsonrpc": "2.0", "id": engine_id(0), "method": "public/test", "params": {}}
    assert TEST_TEMPLATE[SEQ_OFFSET:SEQ_OFFSET + SEQ_DIGITS] == b"0" * SEQ_DIGITS
    assert TEST_TEMPLATE[SEQ_OFFSET - len(ENGINE_ID_PREFIX):SEQ_OFFSET] == ENGINE_ID_PREFIX.encode()
    assert build_test_template() == (TEST_TEMPLATE, SEQ_OFFSET)


def test_patching_digits_gives_the_engine_id() -> None:
    patched = bytearray(TEST_TEMPLATE)
    patched[SEQ_OFFSET:SEQ_OFFSET + SEQ_DIGITS] = b"%012d" % 123456
    assert json.loads(patched)["id"] == engine_id(123456)


def test_engine_ids() -> None:
    assert engine_id(7) == "~drbfast~000000000007"
    assert engine_id(10**12 + 5) == engine_id(5)
    assert is_engine_id(engine_id(1)) and not is_engine_id(7) and not is_engine_id("drbfast")
