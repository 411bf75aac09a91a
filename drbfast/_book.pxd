# C interface of the compiled order book (drbfast/_book.pyx), for the listener to cimport.
# The status values are shared with drbfast.book.BookStatus; do not renumber.

from libc.stdint cimport int64_t, uint64_t

cdef enum:
    BOOK_APPLIED = 0
    BOOK_SNAPSHOT = 1
    BOOK_GAP = 2
    BOOK_UNKNOWN_LEVEL = 3
    BOOK_CROSSED = 4
    BOOK_PARSE_ERROR = 5
    BOOK_NOT_BOOK = 6
    BOOK_OTHER_CHANNEL = 7
    BOOK_RESYNCING = 8
    BOOK_NO_MEMORY = 9

# One price level. Both sides are kept sorted ascending by key with the best level LAST,
# so a change near the top of the book moves only the few levels above it:
# bids: key = price; asks: key = -price (negation is exact in IEEE 754).
ctypedef struct Level:
    double key
    double amount

ctypedef struct Side:
    Level* lv
    Py_ssize_t n
    Py_ssize_t cap

# A parsed [action, price, amount] (or [price, amount]) entry, before it is applied.
ctypedef struct Op:
    double key
    double amount
    int action      # 0 new, 1 change, 2 delete
    int idx         # position in the message (stable order for odd snapshots)

ctypedef struct OpList:
    Op* op
    Py_ssize_t n
    Py_ssize_t cap

# What a change frame overwrote, to roll it back if a later entry of the same frame fails.
ctypedef struct Undo:
    double key
    double amount   # the old amount (had == 1)
    int side
    int had         # 1: the level existed with `amount`; 0: it did not exist

cdef class OrderBook:
    cdef readonly str channel
    cdef readonly str instrument
    cdef readonly bint grouped
    cdef bytes _chan                # channel as UTF-8, compared with the message's bytes
    cdef Side side[2]               # 0: bids, 1: asks (the live book)
    cdef Side spare[2]              # snapshot scratch, swapped with `side` on commit
    cdef OpList ops[2]              # the frame being applied, per side
    cdef Undo* undo
    cdef Py_ssize_t undo_cap
    cdef bint synced
    cdef bint oom                   # the scan of this message could not grow `ops`
    cdef int64_t _change_id
    cdef int64_t _timestamp
    cdef public int64_t rx_ns
    cdef readonly uint64_t version          # +1 whenever what a reader sees changes
    cdef readonly uint64_t updates          # change frames applied
    cdef readonly uint64_t snapshots        # snapshots (and grouped windows) applied
    cdef readonly uint64_t levels           # level entries applied (changes + snapshot levels)
    cdef readonly uint64_t gaps
    cdef readonly uint64_t unknown_levels
    cdef readonly uint64_t crossed
    cdef readonly uint64_t parse_errors
    cdef readonly uint64_t ignored          # change frames dropped while resyncing
    cdef readonly uint64_t other            # NOT_BOOK / OTHER_CHANNEL messages
    cdef readonly uint64_t resyncs          # times the book went from synced to resyncing
    cdef readonly uint64_t no_memory
    cdef list top_cache                     # [bid, ask]: the last best-level tuple read
    cdef double top_key[2]
    cdef double top_amount[2]
    cdef object best_level(self, int sd)

# Apply one complete WebSocket text message (the whole JSON-RPC notification) read from
# data[0:size]. rx_ns: receive time (CLOCK_MONOTONIC ns) recorded on success; 0 = now.
# Returns a BOOK_* status. Never raises; allocates nothing on the steady-state path (the
# arrays grow only when a frame has more levels than any before). Needs the GIL (the rare
# long-number path uses CPython's correctly rounded strtod).
cdef int book_apply(OrderBook b, const char* data, Py_ssize_t size, int64_t rx_ns) noexcept

# 1 if channel[0:size] (raw bytes of the message's channel string) is this book's channel.
cdef bint book_channel_is(OrderBook b, const char* channel, Py_ssize_t size) noexcept
