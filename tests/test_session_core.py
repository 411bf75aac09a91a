"""The sans-I/O Session's decisions: bytes, time and connection facts in; events and
actions out. No socket, no event loop."""

from __future__ import annotations

import json
from typing import Any

import pytest

from drbfast._book import OrderBook
from drbfast.errors import ConnectionLost, InvalidCredentials, RequestTimeout, Unauthorized
from drbfast.kinds import Lane
from drbfast.orders import order_params
from drbfast.session import (
    AUTH_RETRIES,
    RECONCILE_ATTEMPTS,
    Answered,
    BookChanged,
    Drop,
    Failed,
    Notice,
    Notification,
    Send,
    Session,
    SessionOptions,
    Settled,
    State,
    StateChanged,
)

CREDS = {"client_id": "abc", "client_secret": "s3cret-value"}


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


class Holder:
    def __init__(self, channels: list[str]) -> None:
        self.channels = channels
        self.refused: list[str] = []


def reply(req_id: Any, result: Any = None, error: Any = None) -> bytes:
    body: dict[str, Any] = {"jsonrpc": "2.0", "id": req_id}
    if error is not None:
        body["error"] = error
    else:
        body["result"] = result
    return json.dumps(body).encode()


def notification(channel: str, data: Any) -> bytes:
    return json.dumps({"jsonrpc": "2.0", "method": "subscription", "params": {"channel": channel, "data": data}}).encode()


def sends(outputs: list[Any]) -> list[Send]:
    return [o for o in outputs if isinstance(o, Send)]


def kinds(outputs: list[Any]) -> list[str]:
    return [o.kind for o in outputs if isinstance(o, Notice)]


def answer(session: Session, send: Send, result: Any = None, error: Any = None) -> list[Any]:
    return session.receive(reply(send.req_id, result, error), Lane.PRIORITY, "", 1)


AUTH_RESULT = {"access_token": "at", "refresh_token": "rt", "expires_in": 36, "scope": "connection", "token_type": "bearer"}


def ready_session(clock: Clock, **options: Any) -> tuple[Session, list[Any]]:
    """A session through its whole set-up; returns it and every output seen."""
    session = Session(SessionOptions(**{**CREDS, **options}), clock=clock)
    seen = session.connecting() + session.connection_made()
    results = {"public/hello": {"version": "1.2.26"}, "public/auth": AUTH_RESULT, "public/set_heartbeat": "ok",
               "private/enable_cancel_on_disconnect": "ok"}
    for _ in range(10):
        pending = sends(seen)
        if session.state is State.READY:
            break
        step = pending[-1]
        if step.method.endswith("/subscribe"):
            result: Any = json.loads(step.data)["params"]["channels"]
        else:
            result = results[step.method]
        seen += answer(session, step, result)
    assert session.state is State.READY
    return session, seen


def test_setup_runs_one_step_at_a_time_and_ends_ready() -> None:
    clock = Clock()
    session, seen = ready_session(clock, cancel_on_disconnect="connection")
    assert [s.method for s in sends(seen)] == ["public/hello", "public/auth", "public/set_heartbeat",
                                              "private/enable_cancel_on_disconnect"]
    changes = [(o.old, o.new) for o in seen if isinstance(o, StateChanged)]
    assert changes == [(State.NEW, State.CONNECTING), (State.CONNECTING, State.SETTING_UP), (State.SETTING_UP, State.READY)]
    assert session.tokens.refresh_at == pytest.approx(clock.t + 36 * 0.8)
    assert b"s3cret-value" not in b"".join(s.data for s in sends(seen))


def test_a_setup_error_is_the_attempts_error_and_13009_is_retried_bounded() -> None:
    clock = Clock()
    session = Session(SessionOptions(**CREDS), clock=clock)
    session.connecting()
    hello = sends(session.connection_made())[0]
    auth = sends(answer(session, hello, {}))[0]
    answer(session, auth, error={"code": 13009, "message": "unauthorized"})
    assert isinstance(session.setup_error, Unauthorized)
    session.connection_lost(ConnectionLost("detached"))
    for attempt in range(AUTH_RETRIES - 1):
        out = session.attempt_failed(Unauthorized(13009, "unauthorized"))
        assert session.state is State.BACKING_OFF and kinds(out) == ["reconnect_failed"]
    out = session.attempt_failed(Unauthorized(13009, "unauthorized"))
    assert session.state is State.FAILED and kinds(out) == ["fatal"]
    assert isinstance(session.error, Unauthorized)


def test_invalid_credentials_are_fatal_at_once() -> None:
    session, _ = ready_session(Clock())
    session.connection_lost(ConnectionLost("gone"))
    out = session.attempt_failed(InvalidCredentials(13004, "invalid_credentials"))
    assert session.state is State.FAILED and kinds(out) == ["fatal"]


def test_a_13009_streak_is_forgotten_once_a_connection_is_ready() -> None:
    clock = Clock()
    session, _ = ready_session(clock)
    session.connection_lost(ConnectionLost("gone"))
    for _ in range(AUTH_RETRIES - 1):
        session.attempt_failed(Unauthorized(13009, "unauthorized"))
    session2 = session  # the next attempt works
    session2.connecting()
    hello = sends(session2.connection_made())[0]
    auth = sends(answer(session2, hello, {}))[0]
    heartbeat = sends(answer(session2, auth, AUTH_RESULT))[0]
    answer(session2, heartbeat, "ok")
    assert session2.state is State.READY
    session2.connection_lost(ConnectionLost("gone"))
    session2.attempt_failed(Unauthorized(13009, "unauthorized"))
    assert session2.state is State.BACKING_OFF


def test_replies_are_matched_and_unknown_ids_are_orphans() -> None:
    session, _ = ready_session(Clock())
    ref = object()
    req_id, data = session.request("public/get_time", {}, ref)
    assert json.loads(data) == {"jsonrpc": "2.0", "id": req_id, "method": "public/get_time", "params": {}}
    out = session.receive(reply(req_id, 123), Lane.PRIORITY, "", 5)
    assert len(out) == 1 and isinstance(out[0], Answered) and out[0].ref is ref and out[0].reply.result == 123
    assert session.receive(reply(req_id, 123), Lane.PRIORITY, "", 5) == []
    assert session.stats.orphan_replies == 1
    assert session.receive(b'{"jsonrpc":"2.0","id":', Lane.PRIORITY, "", 5) == []
    assert session.stats.parse_errors == 1


def test_a_timeout_fails_the_request_and_the_late_reply_is_an_orphan() -> None:
    session, _ = ready_session(Clock())
    ref = object()
    req_id, _data = session.request("public/get_time", {}, ref)
    out = session.expire(req_id)
    assert isinstance(out[0], Failed) and isinstance(out[0].error, RequestTimeout) and not out[0].uncertain
    assert session.receive(reply(req_id, 1), Lane.PRIORITY, "", 5) == []
    assert session.stats.orphan_replies == 1 and session.stats.timeouts == 1


def test_connection_lost_fails_everything_and_marks_kept_books_stale() -> None:
    clock = Clock()
    session, _ = ready_session(clock)
    book = OrderBook("book.BTC-PERPETUAL.100ms")
    kept = session.keep_book(book)
    holder = Holder([book.channel])
    session.subscribe(holder, [book.channel])
    session.book_subscribed(kept, holder, held=False)
    snapshot = notification(book.channel, {"type": "snapshot", "timestamp": 1, "change_id": 10,
                                           "instrument_name": "BTC-PERPETUAL", "bids": [["new", 99.0, 1.0]],
                                           "asks": [["new", 101.0, 1.0]]})
    out = session.receive(snapshot, Lane.BOOK, book.channel, 7)
    assert out == [BookChanged(book.channel)] and book.is_synced
    call_ref, order_ref = object(), object()
    session.request("public/get_time", {}, call_ref)
    session.order("private/buy", order_params("BTC-PERPETUAL", 10, price=100.0, label="L1"), order_ref)
    out = session.connection_lost(ConnectionLost("gone"))
    failed = {o.ref: o for o in out if isinstance(o, Failed)}
    assert not failed[call_ref].uncertain and failed[order_ref].uncertain
    assert not book.is_synced
    stale = [o for o in out if isinstance(o, Notice) and o.kind == "book_stale"]
    assert stale == [Notice("book_stale", {"channels": [book.channel]})]
    assert session.state is State.BACKING_OFF and session.in_flight == 0 and session.to_reconcile == 1


def test_connection_lost_without_reconnect_closes() -> None:
    session, _ = ready_session(Clock(), reconnect=False)
    session.connection_lost(ConnectionLost("gone"))
    assert session.state is State.CLOSED


def _lost_order(clock: Clock) -> tuple[Session, object]:
    session, _ = ready_session(clock)
    ref = object()
    req_id, _data = session.order("private/buy", order_params("BTC-PERPETUAL", 10, price=100.0, label="L1"), ref)
    out = session.expire(req_id)
    assert isinstance(out[0], Failed) and out[0].uncertain
    return session, ref


def test_a_lost_ack_is_looked_up_by_label() -> None:
    clock = Clock()
    session, ref = _lost_order(clock)
    lookup = sends(session.tick(clock.t))
    assert [s.method for s in lookup] == ["private/get_order_state_by_label"]
    assert json.loads(lookup[0].data)["params"] == {"currency": "BTC", "label": "L1"}
    out = answer(session, lookup[0], [{"label": "L1", "order_id": "o1", "order_state": "open"}])
    settled = [o for o in out if isinstance(o, Settled)]
    assert len(settled) == 1 and settled[0].ref is ref and settled[0].outcome == "placed"
    assert kinds(out) == ["order_reconciled"] and session.to_reconcile == 0


@pytest.mark.parametrize("bad", ["error", "malformed", "timeout"])
def test_failing_lookups_are_retried_bounded_then_settled_unknown(bad: str) -> None:
    clock = Clock()
    session, ref = _lost_order(clock)
    settled: list[Settled] = []
    methods: list[str] = []
    for _ in range(40):
        out = session.tick(clock.t)
        for send in sends(out):
            methods.append(send.method)
            if bad == "error":
                out += answer(session, send, error={"code": 11094, "message": "internal_server_error"})
            elif bad == "malformed":
                out += answer(session, send, {"not": "a list"})
            else:
                out += session.expire(send.req_id)
        settled += [o for o in out if isinstance(o, Settled)]
        if settled:
            break
        clock.t += 0.5
    assert len(settled) == 1 and settled[0].ref is ref and settled[0].outcome == "unknown"
    assert RECONCILE_ATTEMPTS <= len(methods) <= 2 * RECONCILE_ATTEMPTS
    assert session.to_reconcile == 0 and session.state is State.READY


def test_a_lookup_in_flight_when_the_connection_goes_is_asked_again() -> None:
    clock = Clock()
    session, ref = _lost_order(clock)
    assert sends(session.tick(clock.t))
    session.connection_lost(ConnectionLost("gone"))
    assert session.to_reconcile == 1
    out = session.closed()
    assert [o.outcome for o in out if isinstance(o, Settled)] == ["unknown"]


def test_an_unanswered_refresh_is_retried_before_expiry() -> None:
    clock = Clock()
    session, _ = ready_session(clock)
    clock.t += 36 * 0.8
    first = sends(session.tick(clock.t))
    assert [json.loads(s.data)["params"]["grant_type"] for s in first] == ["refresh_token"]
    assert session.expire(first[0].req_id) == []
    assert session.tokens.refresh_at is not None and session.tokens.refresh_at < clock.t + 36 * 0.2
    clock.t = session.tokens.refresh_at
    second = sends(session.tick(clock.t))
    assert len(second) == 1 and second[0].method == "public/auth"
    answer(session, second[0], AUTH_RESULT)
    assert session.stats.token_refreshes == 1 and session.tokens.refresh_at == pytest.approx(clock.t + 28.8)


def test_a_token_that_expires_unrefreshed_drops_the_connection() -> None:
    clock = Clock()
    session, _ = ready_session(clock)
    seen: list[Any] = []
    for _ in range(80):
        clock.t += 0.5
        out = session.tick(clock.t)
        seen += out
        for send in sends(out):
            seen += session.expire(send.req_id)  # every refresh goes unanswered
        if kinds(seen):
            break
    assert clock.t >= 1000 + 36, "not before the token expired"
    assert kinds(seen) == ["token_expired"] and isinstance(seen[-1], Drop)
    assert len(sends(seen)) >= 3, "refreshes were retried until then"


def test_a_refused_refresh_token_falls_back_to_a_fresh_grant() -> None:
    clock = Clock()
    session, _ = ready_session(clock)
    clock.t += 28.8
    refresh = sends(session.tick(clock.t))[0]
    answer(session, refresh, error={"code": 13009, "message": "unauthorized"})
    fresh = sends(session.tick(clock.t))
    assert [json.loads(s.data)["params"]["grant_type"] for s in fresh] == ["client_signature"]


def test_a_gap_on_a_raw_book_channel_resubscribes() -> None:
    clock = Clock()
    session, _ = ready_session(clock)
    channel = "book.BTC-PERPETUAL.100ms"
    holder = Holder([channel])
    assert session.subscribe(holder, [channel]) == [channel]
    snap = {"type": "snapshot", "change_id": 1, "bids": [], "asks": []}
    out = session.receive(notification(channel, snap), Lane.BOOK, channel, 9)
    assert isinstance(out[0], Notification) and out[0].holders == [holder] and out[0].data == snap and out[0].rx_ns == 9
    out = session.receive(notification(channel, {"type": "change", "prev_change_id": 5, "change_id": 6}), Lane.BOOK, channel, 9)
    assert kinds(out) == ["book_gap"] and not [o for o in out if isinstance(o, Notification)]
    assert session.book_waiting(channel)
    unsub = sends(session.tick(clock.t))
    assert [s.method for s in unsub] == ["private/unsubscribe"]
    sub = sends(answer(session, unsub[0], [channel]))
    assert [s.method for s in sub] == ["private/subscribe"]
    answer(session, sub[0], [channel])
    assert channel not in session.resync
    out = session.receive(notification(channel, {"type": "snapshot", "change_id": 7, "bids": [], "asks": []}),
                          Lane.BOOK, channel, 9)
    assert isinstance(out[0], Notification) and not session.book_waiting(channel)


def test_the_watchdog_drops_a_silent_connection() -> None:
    clock = Clock()
    session, _ = ready_session(clock, heartbeat=1.0)
    assert session.tick(clock.t, last_rx=clock.t - 1.0) == []
    out = session.tick(clock.t, last_rx=clock.t - 2.5)
    assert kinds(out) == ["watchdog"] and isinstance(out[-1], Drop)
