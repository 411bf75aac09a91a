"""The sans-I/O session parts, without sockets: set-up plan, pending table, registry,
resync and token schedules, options."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drbfast.auth import sign
from drbfast.errors import ConfigurationError, MalformedReply
from drbfast.session import (
    PendingTable,
    ResyncSchedule,
    SessionOptions,
    SetupPlan,
    SubscriptionRegistry,
    TokenSchedule,
    pool_of,
    refused_channels,
)

CREDS = {"client_id": "id", "client_secret": "s3cret"}


def run_plan(plan: SetupPlan, answers: dict[str, object]) -> list[str]:
    methods = []
    while (step := plan.next()) is not None:
        methods.append(step.method)
        plan.done(step, answers[step.kind])
    return methods


OK = {"hello": {"version": "1"}, "auth": {"access_token": "a", "refresh_token": "r", "expires_in": 900},
      "heartbeat": "ok", "cancel_on_disconnect": "ok", "subscribe": ["x"]}


def test_plan_runs_the_steps_in_order_and_only_those_configured() -> None:
    full = SessionOptions(cancel_on_disconnect="connection", **CREDS)
    plan = SetupPlan(full, ["x"])
    assert run_plan(plan, OK) == ["public/hello", "public/auth", "public/set_heartbeat",
                                  "private/enable_cancel_on_disconnect", "private/subscribe"]
    assert plan.token is not None and plan.token["access_token"] == "a"
    bare = SessionOptions(heartbeat=None)
    assert run_plan(SetupPlan(bare, []), OK) == ["public/hello"]
    public = SessionOptions()
    assert run_plan(SetupPlan(public, ["x"]), OK) == ["public/hello", "public/set_heartbeat", "public/subscribe"]


def test_auth_step_is_signed_when_it_is_due() -> None:
    ticks = iter([1_000, 2_000])
    plan = SetupPlan(SessionOptions(**CREDS), [], now_ms=lambda: next(ticks))
    plan.next()
    auth = plan.next()
    assert auth is not None and auth.params["timestamp"] == 1_000
    assert auth.params["signature"] == sign("s3cret", 1_000, auth.params["nonce"], "")
    assert "s3cret" not in repr(auth)


@pytest.mark.parametrize("kind,bad", [("auth", {"no": "token"}), ("auth", 5), ("heartbeat", "nope"),
                                      ("cancel_on_disconnect", None), ("subscribe", 42), ("subscribe", [1, 2])])
def test_malformed_setup_replies_are_typed_errors(kind: str, bad: object) -> None:
    plan = SetupPlan(SessionOptions(cancel_on_disconnect="account", **CREDS), ["x"])
    with pytest.raises(MalformedReply) as info:
        run_plan(plan, {**OK, kind: bad})
    assert info.value.method == {"auth": "public/auth", "heartbeat": "public/set_heartbeat",
                                 "cancel_on_disconnect": "private/enable_cancel_on_disconnect",
                                 "subscribe": "private/subscribe"}[kind]


def test_malformed_auth_reply_never_shows_a_token() -> None:
    plan = SetupPlan(SessionOptions(**CREDS), [])
    with pytest.raises(MalformedReply) as info:
        run_plan(plan, {**OK, "auth": {"access_token": 7, "refresh_token": "SECRET-REFRESH"}})
    assert "SECRET-REFRESH" not in str(info.value)


def test_resubscribe_reports_refused_channels_and_splits_large_lists() -> None:
    channels = [f"ticker.X{i:05d}-PERPETUAL-LONG-NAME.100ms" for i in range(2_000)]
    plan = SetupPlan(SessionOptions(heartbeat=None), channels)
    hello = plan.next()
    assert hello is not None and hello.kind == "hello"
    plan.done(hello, {})
    chunks = []
    while (step := plan.next()) is not None:
        chunks.append(step.channels)
        plan.done(step, list(step.channels[1:]))
    assert len(chunks) >= 2 and sum(len(c) for c in chunks) == 2_000
    assert plan.refused == [c[0] for c in chunks]


@given(st.lists(st.text(min_size=1, max_size=8), max_size=20, unique=True), st.data())
def test_refused_channels_is_what_the_result_left_out(asked: list[str], data: st.DataObject) -> None:
    granted = data.draw(st.lists(st.sampled_from(asked), unique=True) if asked else st.just([]))
    assert refused_channels("public/subscribe", asked, granted) == [c for c in asked if c not in granted]


def test_pending_table_ties_replies_by_integer_id_and_fails_all() -> None:
    t: PendingTable[str] = PendingTable()
    a, b = t.add("m1", "wa"), t.add("m2", "wb")
    assert a != b
    assert t.pop("1") is None and t.pop(True) is None and t.pop(None) is None
    got = t.pop(a)
    assert got is not None and got.waiter == "wa"
    assert t.pop(a) is None
    assert [p.method for p in t.fail_all()] == ["m2"]
    assert len(t) == 0
    assert t.add("m3", "wc") > b, "ids are never reused"


def test_registry_new_and_gone_channels() -> None:
    r: SubscriptionRegistry[str] = SubscriptionRegistry()
    assert r.add("s1", ["a", "b"]) == ["a", "b"]
    assert r.add("s2", ["b", "c"]) == ["c"]
    assert r.holders("b") == ["s1", "s2"]
    assert r.remove("s1", ["a", "b"]) == ["a"]
    assert r.channels == ["b", "c"]
    assert r.remove("s2", ["b", "c"]) == ["b", "c"]
    assert r.channels == [] and "b" not in r


def test_resync_schedule_retries_with_growing_delays_until_done() -> None:
    from drbfast.backoff import Backoff

    s = ResyncSchedule(lambda: Backoff(initial=1.0, factor=2.0, cap=8.0))
    assert s.request("book.X.100ms", 0.0)
    assert not s.request("book.X.100ms", 0.0), "one resync at a time per channel"
    assert s.due(0.0) == ["book.X.100ms"]
    d1 = s.failed("book.X.100ms", 0.0)
    assert s.due(0.0) == [] and s.due(d1) == ["book.X.100ms"]
    d2 = s.failed("book.X.100ms", d1)
    assert 0.5 <= d1 <= 1.0 and 1.0 <= d2 <= 2.0
    assert s.next_due() == pytest.approx(d1 + d2)
    s.done("book.X.100ms")
    assert len(s) == 0 and s.next_due() is None


def test_resync_requested_during_an_attempt_runs_again_after_it() -> None:
    """The race CI caught: a slow consumer's queue dropped the snapshot a resync was
    bringing while that resync was still in flight. The request made then must not be
    swallowed by the attempt's success, or the local book waits forever."""
    s = ResyncSchedule()
    assert s.request("book.X.raw", 0.0)
    s.begin("book.X.raw")
    assert s.due(0.0) == [] and s.next_due() is None, "an attempt in flight is not due again"
    assert not s.request("book.X.raw", 1.0)
    assert s.done("book.X.raw", 2.0), "the request during the attempt asks for another"
    assert s.due(2.0) == ["book.X.raw"]
    s.begin("book.X.raw")
    assert not s.done("book.X.raw", 3.0) and len(s) == 0
    # A request before an attempt begins is the attempt itself, not another one.
    assert s.request("book.Y.raw", 0.0) and not s.request("book.Y.raw", 0.0)
    s.begin("book.Y.raw")
    assert not s.done("book.Y.raw", 1.0) and "book.Y.raw" not in s
    # Unsubscribed mid-attempt: nothing follows, even with a request pending.
    s.request("book.Z.raw", 0.0)
    s.begin("book.Z.raw")
    s.request("book.Z.raw", 0.5)
    s.cancel("book.Z.raw")
    assert not s.done("book.Z.raw", 1.0) and len(s) == 0


def test_a_resync_whose_snapshot_never_came_is_overdue_after_the_grace() -> None:
    s = ResyncSchedule(grace=2.0)
    assert not s.overdue("book.X.raw", 100.0), "never resynced: a first snapshot is the subscribe's business"
    s.request("book.X.raw", 0.0)
    s.begin("book.X.raw")
    assert not s.overdue("book.X.raw", 100.0), "an attempt in flight is not overdue"
    s.done("book.X.raw", 10.0)
    assert not s.overdue("book.X.raw", 12.0) and s.overdue("book.X.raw", 12.1)
    s.request("book.X.raw", 13.0)
    assert not s.overdue("book.X.raw", 20.0), "another attempt is already due"
    s.cancel("book.X.raw")
    assert not s.overdue("book.X.raw", 30.0), "unsubscribed: forgotten"
    s.request("book.Y.raw", 0.0)
    s.done("book.Y.raw", 1.0)
    s.clear()
    assert not s.overdue("book.Y.raw", 10.0), "a new connection starts afresh"


def test_token_schedule_refreshes_at_80_percent() -> None:
    t = TokenSchedule()
    t.on_auth({"access_token": "a", "refresh_token": "r", "expires_in": 100, "scope": "connection"}, now=10.0)
    assert t.refresh_at == pytest.approx(90.0)
    assert not t.due(89.9) and t.due(90.0)
    assert t.refresh_params() == {"grant_type": "refresh_token", "refresh_token": "r"}
    t.on_auth({"access_token": "a", "expires_in": float("nan")}, now=0.0)
    assert t.refresh_at is None and t.refresh_params() is None


@pytest.mark.parametrize("kwargs,match", [
    ({"client_id": "x"}, "both"),
    ({"cancel_on_disconnect": "connection"}, "credentials"),
    ({"heartbeat": float("nan")}, "heartbeat"),
    ({"heartbeat": 0}, "heartbeat"),
    ({"request_timeout": float("inf")}, "request_timeout"),
    ({"watchdog": -1}, "watchdog"),
    ({"auth": "password", **CREDS}, "signature"),
    ({"max_queue": 0}, "max_queue"),
])
def test_options_refuse_what_cannot_work(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(ConfigurationError, match=match):
        SessionOptions(**kwargs)  # type: ignore[arg-type]


def test_options_never_show_the_secret() -> None:
    o = SessionOptions(**CREDS)
    assert "s3cret" not in repr(o) and "s3cret" not in str(o.credentials)
    assert o.watchdog_timeout == 20.0 and o.connect_timeout == 10.0


def test_methods_map_to_their_credit_pool() -> None:
    assert pool_of("private/buy") == "matching" and pool_of("private/cancel_all") == "matching"
    assert pool_of("public/subscribe") == "subscribe" and pool_of("private/subscribe") == "subscribe"
    assert pool_of("public/get_time") == "non_matching" and pool_of("private/unsubscribe") == "non_matching"
