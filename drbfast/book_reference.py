"""The plain-Python order book: the oracle the compiled :class:`drbfast._book.OrderBook`
is tested against (and the statement of its rules). Slow on purpose: a full JSON parse
and a dict per side.

Rules (PROTOCOL.md 4.2, 4.3):

* The message is parsed as strict JSON (no NaN/Infinity) by
  :func:`drbfast.oracle.parse_first_wins` (first duplicate key wins). Unparseable: PARSE_ERROR.
* ``method`` must be ``"subscription"``, ``params`` an object whose ``channel`` is a string
  starting with ``book.``: otherwise NOT_BOOK. Another book channel: OTHER_CHANNEL.
* ``data`` must be an object with an integer ``change_id`` (|x| < 10**18), optional
  integer ``timestamp`` (0 when absent) and ``bids``/``asks`` lists (empty when absent).
  On ``book.{instrument}.{interval}`` each level is ``[action, price, amount]`` with
  action ``new``/``change``/``delete``, ``type`` is ``snapshot`` or ``change``, and a
  change carries an integer ``prev_change_id`` (if present on a snapshot it must be an
  integer too). On the grouped ``book.{instrument}.{group}.{depth}.{interval}`` each level
  is ``[price, amount]``, every frame is a full window, ``type``/``prev_change_id`` are
  ignored. Prices and amounts are JSON numbers, finite, amounts >= 0. Anything else:
  PARSE_ERROR.
* Snapshot: the side is rebuilt as if each level were applied in order to an empty side
  (only ``new`` allowed; a repeated price: the last entry wins; amount 0: no level).
* Change (only while synced, else RESYNCING): ``prev_change_id`` must equal the book's
  ``change_id`` (else GAP). Entries apply in order: ``new`` sets the level (amount 0
  removes it if present), ``change`` sets an existing level (amount 0 removes it),
  ``delete`` removes an existing level; ``change``/``delete`` of a missing level is
  UNKNOWN_LEVEL.
* After a snapshot or change, best bid >= best ask is CROSSED.
* GAP, UNKNOWN_LEVEL, CROSSED and PARSE_ERROR leave the levels as they were before the
  message and make the book not synced; only a snapshot syncs it again.
"""

from __future__ import annotations

import math
from typing import Any

from .book import BookStatus, parse_book_channel
from .oracle import parse_first_wins

__all__ = ["ReferenceBook"]

_ID_LIMIT = 10**18


class _Bad(Exception):
    pass


def _int(value: Any) -> int:
    if type(value) is not int or not -_ID_LIMIT < value < _ID_LIMIT:
        raise _Bad
    return value


def _num(value: Any) -> float:
    if type(value) not in (int, float):
        raise _Bad
    try:
        out = float(value)
    except OverflowError:
        raise _Bad from None
    if not math.isfinite(out):
        raise _Bad
    return out


def _levels(value: Any, grouped: bool) -> list[tuple[str, float, float]]:
    if not isinstance(value, list):
        raise _Bad
    out = []
    for entry in value:
        if not isinstance(entry, list):
            raise _Bad
        if grouped:
            if len(entry) != 2:
                raise _Bad
            action, price, amount = "new", _num(entry[0]), _num(entry[1])
        else:
            if len(entry) != 3 or entry[0] not in ("new", "change", "delete"):
                raise _Bad
            action, price, amount = entry[0], _num(entry[1]), _num(entry[2])
        if amount < 0:
            raise _Bad
        out.append((action, price, amount))
    return out


class ReferenceBook:
    """Same API subset as the compiled book: ``apply``, ``bids()``, ``asks()``,
    ``is_synced``, ``change_id``, ``timestamp``, ``reset()``."""

    def __init__(self, channel: str) -> None:
        self.channel = channel
        self.instrument, self.grouped = parse_book_channel(channel)
        self.bid_levels: dict[float, float] = {}
        self.ask_levels: dict[float, float] = {}
        self.is_synced = False
        self.change_id = 0
        self.timestamp = 0

    def bids(self, n: int | None = None) -> list[tuple[float, float]]:
        return sorted(self.bid_levels.items(), reverse=True)[:n]

    def asks(self, n: int | None = None) -> list[tuple[float, float]]:
        return sorted(self.ask_levels.items())[:n]

    def reset(self) -> None:
        self.is_synced = False

    def _fail(self, status: BookStatus) -> BookStatus:
        self.is_synced = False
        return status

    def apply(self, payload: bytes) -> BookStatus:
        try:
            msg = parse_first_wins(payload)
        except (ValueError, RecursionError):
            return self._fail(BookStatus.PARSE_ERROR)
        if not isinstance(msg, dict) or msg.get("method") != "subscription":
            return BookStatus.NOT_BOOK
        params = msg.get("params")
        if not isinstance(params, dict) or not isinstance(params.get("channel"), str):
            return BookStatus.NOT_BOOK
        channel = params["channel"]
        if not channel.startswith("book."):
            return BookStatus.NOT_BOOK
        if channel != self.channel:
            return BookStatus.OTHER_CHANNEL
        data = params.get("data")
        try:
            if not isinstance(data, dict):
                raise _Bad
            change_id = _int(data.get("change_id"))
            timestamp = _int(data["timestamp"]) if "timestamp" in data else 0
            bids = _levels(data.get("bids", []), self.grouped)
            asks = _levels(data.get("asks", []), self.grouped)
            kind: Any = "snapshot"  # a grouped frame is a full window
            prev: int | None = None
            if not self.grouped:
                kind = data.get("type")
                if kind not in ("snapshot", "change"):
                    raise _Bad
                prev = _int(data["prev_change_id"]) if "prev_change_id" in data else None
                if kind == "change" and prev is None:
                    raise _Bad
                if kind == "snapshot" and any(a != "new" for a, _, _ in bids + asks):
                    raise _Bad
        except _Bad:
            return self._fail(BookStatus.PARSE_ERROR)
        if kind == "snapshot":
            new_bids: dict[float, float] = {}
            new_asks: dict[float, float] = {}
            for side, levels in ((new_bids, bids), (new_asks, asks)):
                for _, price, amount in levels:
                    side.pop(price, None)
                    if amount:
                        side[price] = amount
            if new_bids and new_asks and max(new_bids) >= min(new_asks):
                return self._fail(BookStatus.CROSSED)
            self.bid_levels, self.ask_levels = new_bids, new_asks
            self.is_synced = True
            self.change_id, self.timestamp = change_id, timestamp
            return BookStatus.SNAPSHOT
        if not self.is_synced:
            return BookStatus.RESYNCING
        if prev != self.change_id:
            return self._fail(BookStatus.GAP)
        work_bids, work_asks = dict(self.bid_levels), dict(self.ask_levels)
        for side, levels in ((work_bids, bids), (work_asks, asks)):
            for action, price, amount in levels:
                if action != "new" and price not in side:
                    return self._fail(BookStatus.UNKNOWN_LEVEL)
                if action == "delete" or amount == 0:
                    side.pop(price, None)
                else:
                    side[price] = amount
        if work_bids and work_asks and max(work_bids) >= min(work_asks):
            return self._fail(BookStatus.CROSSED)
        self.bid_levels, self.ask_levels = work_bids, work_asks
        self.change_id, self.timestamp = change_id, timestamp
        return BookStatus.APPLIED
