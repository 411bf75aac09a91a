"""Types and helpers around the compiled order book (:mod:`drbfast._book`).

Plain Python on purpose: nothing here is on the hot path. The status values are shared
with the C enum in ``_book.pxd``; do not renumber.

Driving a book (what a subscriber does with the statuses):

* Feed every message of the book's channel to ``OrderBook.apply(payload, rx_ns)`` (or, in
  Cython, ``book_apply(book, ptr, size, rx_ns)`` from the read buffer).
* APPLIED / SNAPSHOT: the book changed (``version`` went up); tell the consumer.
* A status in :data:`RESYNC_STATUSES`: the book is resyncing. On a
  ``book.{instrument}.{interval}`` channel, unsubscribe and subscribe again (with
  backoff) to get a snapshot; keep feeding frames meanwhile (they are RESYNCING:
  ignored) until the SNAPSHOT arrives. A grouped channel heals with its next frame.
* RESYNCING, NOT_BOOK, OTHER_CHANNEL: nothing changed.
* After a reconnect call ``reset()``: the first frame of the new subscription is a snapshot.

While resyncing, the reads show the last consistent book (never a half-applied frame);
``is_synced`` tells whether it is current. Not thread-safe: apply and read on one thread.
"""

from __future__ import annotations

from enum import IntEnum
from typing import NamedTuple

__all__ = ["BookStatus", "BookSnapshot", "RESYNC_STATUSES", "book_channel", "parse_book_channel"]


class BookStatus(IntEnum):
    """What :meth:`drbfast._book.OrderBook.apply` did with one message."""

    #: A ``change`` frame was applied; the book is synced.
    APPLIED = 0
    #: A ``snapshot`` frame (or a grouped channel's full window) replaced the book; synced.
    SNAPSHOT = 1
    #: ``prev_change_id`` is not the book's ``change_id``: a frame was missed. Nothing
    #: applied; the book is resyncing (it keeps its last consistent state).
    GAP = 2
    #: A ``change``/``delete`` named a price level the book does not have. The frame was
    #: rolled back (the book shows the state before it); resyncing.
    UNKNOWN_LEVEL = 3
    #: Applying the frame would leave best bid >= best ask. Rolled back (or, for a
    #: snapshot, not committed); resyncing.
    CROSSED = 4
    #: The message is not one the strict scanner reads (invalid JSON, a field of the
    #: wrong type, escapes where the scanner does not decode them ...). Nothing applied;
    #: resyncing.
    PARSE_ERROR = 5
    #: Not a book notification (another method, a channel not starting with ``book.``).
    #: The book is untouched.
    NOT_BOOK = 6
    #: A book notification for another channel. The book is untouched.
    OTHER_CHANNEL = 7
    #: A ``change`` frame arrived while the book waits for a snapshot: ignored, counted.
    RESYNCING = 8
    #: Growing the level arrays failed. Nothing applied; resyncing.
    NO_MEMORY = 9


#: Statuses after which the book is resyncing and needs a new snapshot. For a
#: ``book.{instrument}.{interval}`` channel the subscriber must unsubscribe and subscribe
#: again (PROTOCOL.md 4.3: subscribing again to a held channel sends no new snapshot);
#: a grouped channel sends a full window every frame, so it heals by itself.
RESYNC_STATUSES = frozenset(
    {BookStatus.GAP, BookStatus.UNKNOWN_LEVEL, BookStatus.CROSSED, BookStatus.PARSE_ERROR, BookStatus.NO_MEMORY}
)


class BookSnapshot(NamedTuple):
    """A stable copy of a book: plain lists of ``(price, amount)``, best first."""

    channel: str
    bids: list[tuple[float, float]]
    asks: list[tuple[float, float]]
    change_id: int
    timestamp: int
    rx_ns: int
    is_synced: bool


def book_channel(instrument: str, interval: str = "100ms", group: str | None = None, depth: int | None = None) -> str:
    """The channel name for a book subscription (PROTOCOL.md 4.2).

    ``book.{instrument}.{interval}`` without ``group``/``depth``; the grouped form
    ``book.{instrument}.{group}.{depth}.{interval}`` when both are given (``group``
    ``"none"`` for no grouping).
    """
    if "." in instrument or not instrument:
        raise ValueError(f"not an instrument name: {instrument!r}")
    if (group is None) != (depth is None):
        raise ValueError("the grouped book channel needs both group and depth (group='none' for no grouping)")
    if group is None:
        return f"book.{instrument}.{interval}"
    return f"book.{instrument}.{group}.{depth}.{interval}"


def parse_book_channel(channel: str) -> tuple[str, bool]:
    """``(instrument, grouped)`` of a book channel name; ValueError if it is not one."""
    parts = channel.split(".")
    if parts[0] != "book" or len(parts) not in (3, 5) or not all(parts):
        raise ValueError(
            f"not a book channel: {channel!r} (expected book.INSTRUMENT.INTERVAL or "
            "book.INSTRUMENT.GROUP.DEPTH.INTERVAL)"
        )
    return parts[1], len(parts) == 5
