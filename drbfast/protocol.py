"""The session's protocol logic, sans I/O: ids, request bytes, reply matching, the
subscribe-call splitter and per-book continuity. The asyncio client only moves bytes
and resolves futures around these.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from .errors import ConfigurationError
from .frames import ENGINE_ID_PREFIX

__all__ = [
    "BookTracker",
    "MAX_REQUEST_BYTES",
    "Reply",
    "RequestIds",
    "encode_request",
    "split_channels",
]

#: Deribit refuses a client frame above 32 kB with -32600 (PROTOCOL.md 3.4); subscribe
#: calls are split to stay well under it.
MAX_REQUEST_BYTES = 32 * 1024
_SPLIT_BUDGET = 30 * 1024


def encode_request(req_id: int | str | None, method: str, params: dict[str, Any]) -> bytes:
    """The JSON-RPC request frame. Refuses an id the engine reserves for itself."""
    if isinstance(req_id, str) and req_id.startswith(ENGINE_ID_PREFIX):
        raise ConfigurationError(f"request ids starting with {ENGINE_ID_PREFIX!r} are reserved for drbfast's heartbeat answers")
    body: dict[str, Any] = {"jsonrpc": "2.0"}
    if req_id is not None:
        body["id"] = req_id
    body["method"] = method
    body["params"] = params
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()


class RequestIds:
    """Integer ids, increasing, never reused within a client's life."""

    def __init__(self, start: int = 1) -> None:
        self._next = start

    def __call__(self) -> int:
        value = self._next
        self._next += 1
        return value


@dataclass(frozen=True)
class Reply:
    """A parsed response: ``id`` (None for Deribit's id-less errors), ``result`` or
    ``error``, and the server's timestamps in microseconds when present."""

    id: Any
    result: Any = None
    error: Any = None
    us_in: int | None = None
    us_out: int | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    @classmethod
    def from_message(cls, msg: dict[str, Any]) -> Reply:
        us_in, us_out = msg.get("usIn"), msg.get("usOut")
        # usIn/usOut are integers on the wire; some clients saw strings (PROTOCOL.md 2).
        try:
            us_in = int(us_in) if us_in is not None else None
            us_out = int(us_out) if us_out is not None else None
        except (TypeError, ValueError):
            us_in = us_out = None
        return cls(msg.get("id"), msg.get("result"), msg.get("error"), us_in, us_out)


def split_channels(method: str, channels: Iterable[str], *, budget: int = _SPLIT_BUDGET, extra: dict[str, Any] | None = None) -> Iterator[list[str]]:
    """Cut a channel list into chunks whose request frame stays under ``budget`` bytes."""
    overhead = len(encode_request(2**53, method, {"channels": [], **(extra or {})}))
    chunk: list[str] = []
    size = overhead
    for channel in channels:
        cost = len(json.dumps(channel, ensure_ascii=False).encode()) + 1
        if overhead + cost > budget:
            raise ConfigurationError(f"channel name too long for one request: {channel[:60]}...")
        if chunk and size + cost > budget:
            yield chunk
            chunk, size = [], overhead
        chunk.append(channel)
        size += cost
    if chunk:
        yield chunk


class BookTracker:
    """Per-channel ``change_id`` continuity of ``book.*`` channels (PROTOCOL.md 4.2).

    ``check(channel, data)`` returns True when the frame may be applied: a snapshot, or
    a change whose ``prev_change_id`` is the last ``change_id`` seen. On a gap it
    returns False and the channel stays "gapped" (every change is refused) until a new
    snapshot arrives: the caller resubscribes to get one.
    """

    def __init__(self) -> None:
        self._last: dict[str, int] = {}
        self.gapped: set[str] = set()
        self.gaps = 0

    def check(self, channel: str, data: Any) -> bool:
        """``data`` is the notification's ``data``: a dict, or a simdjson object
        (anything with ``get``); anything else passes unchecked."""
        get = getattr(data, "get", None)
        if get is None:
            return True
        prev = get("prev_change_id")
        return self.check_ids(channel, get("type") == "snapshot" or prev is None, get("change_id"), prev)

    def check_ids(self, channel: str, snapshot: bool, change_id: Any, prev_change_id: Any) -> bool:
        """The same check from the three fields (a grouped book has no prev_change_id:
        every message is a full snapshot)."""
        if snapshot:
            if isinstance(change_id, int):
                self._last[channel] = change_id
            self.gapped.discard(channel)
            return True
        if channel in self.gapped:
            return False
        last = self._last.get(channel)
        if last is not None and prev_change_id != last:
            self.gapped.add(channel)
            self.gaps += 1
            return False
        if isinstance(change_id, int):
            self._last[channel] = change_id
        return True

    def invalidate(self, channel: str) -> None:
        """Refuse the channel's changes until its next snapshot (the client dropped some
        of them locally, so what follows would not apply)."""
        self.gapped.add(channel)
        self._last.pop(channel, None)

    def forget(self, channel: str) -> None:
        """Drop the state of an unsubscribed channel (the next frame starts afresh)."""
        self._last.pop(channel, None)
        self.gapped.discard(channel)

    def reset(self) -> None:
        """After a reconnect every book starts from a new snapshot."""
        self._last.clear()
        self.gapped.clear()
