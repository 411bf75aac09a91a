# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""FastListener: the picows listener that keeps a Deribit connection alive by itself.

Every frame picows reads comes through ``on_ws_frame``. A complete TEXT message is
classified from picows' read buffer in place (no copy, no parse). A ``test_request`` is
answered right there with the prebuilt ``public/test`` (PROTOCOL.md 1.3: the answer is a
``public/test`` request; the server closes with 4000 otherwise). Heartbeats and the
replies to the engine's own ``public/test`` are counted and dropped. Every other message
is copied to ``bytes`` once and handed to the ``on_message`` hook: inline while the
consumer keeps up, otherwise through lanes worked off in slices between socket reads.
The socket is never paused: what a slow consumer costs is decided per lane (the
classifier's, see _classify.pxd): priority (replies, then user.*) first and never dropped;
latest-value channels conflated to one pending message each; a book that falls behind
reset and announced (on_drop); the rest in order, dropped oldest-first at the byte
bound (max_bytes). docs/ARCHITECTURE.md has the contract.
"""

cimport cython
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.unicode cimport PyUnicode_DecodeASCII
from libc.stdint cimport int64_t, uint64_t
from libc.stdlib cimport free, malloc, realloc
from libc.string cimport memcpy

from picows.picows cimport WSCloseCode, WSFrame, WSListener, WSMsgType, WSTransport

from drbfast._classify cimport (ClassifyResult, K_HEARTBEAT, K_OTHER, K_TEST_REPLY,
                                K_TEST_REQUEST, K_UNKNOWN, L_BOOK, L_CONFLATE, L_ORDERED,
                                L_PRIORITY, L_UNKNOWN, classify_msg)

import collections
import logging
import sys

from drbfast.errors import ConfigurationError
from drbfast.frames import SEQ_DIGITS, SEQ_OFFSET, TEST_TEMPLATE
from drbfast.oracle import classify_reference, lane_reference, parse_first_wins
from drbfast.frames import ENGINE_ID_PREFIX


def _reply_detail(bytes raw):
    """(is_error, seq) of an engine reply, from a full parse (slow path only)."""
    msg = parse_first_wins(raw)
    ident = msg["id"][len(ENGINE_ID_PREFIX):]
    seq = int(ident) if ident.isascii() and ident.isdigit() and len(ident) <= 18 else -1
    return (1 if "error" in msg else 0), seq

cdef const char* EMPTY = b""


cdef inline str _channel_of(const char* ptr, ClassifyResult* r):
    """The notification's channel: a plain-ASCII slice of the message the classifier
    found right after the production prefix (see _classify), or "" if none."""
    if r.chan_len > 0:
        return PyUnicode_DecodeASCII(ptr + r.chan_off, r.chan_len, NULL)
    return ""

from drbfast._clock cimport now_ns


def monotonic_ns():
    """CLOCK_MONOTONIC in nanoseconds: the clock of every ``*_ns`` timestamp here."""
    return now_ns()


# picows writes the WebSocket header (at most 14 bytes for a client) in front of the
# payload and masks the payload in place (send_reuse_external_buffer), so the reply is
# assembled in a per-connection scratch buffer with this much room before it.
DEF HEADROOM = 16
DEF RTT_RING = 64          # send times of the last 64 engine public/tests, by seq % 64
DEF DEFAULT_MAX_MESSAGE = 64 * 1024 * 1024

_log = logging.getLogger("drbfast.listener")


cdef class HeartbeatStats:
    """A snapshot of a listener's counters. Timestamps are CLOCK_MONOTONIC nanoseconds
    (:func:`monotonic_ns`), 0 when the event has not happened yet."""

    cdef readonly uint64_t heartbeats, test_requests, replies_sent, probes_sent
    cdef readonly uint64_t test_replies, test_reply_errors, messages, binary_messages
    cdef readonly uint64_t fragmented, slow_path, hook_errors, frame_errors
    cdef readonly uint64_t backlog, backlog_peak, dropped, dropped_bytes
    cdef readonly uint64_t delivered, inline, conflated, book_resets, book_dropped
    cdef readonly uint64_t priority_backlog, queued_bytes, queued_bytes_peak, bound_hits
    cdef readonly uint64_t drop_events, lane_slow_path
    cdef readonly int64_t delay_p50_ns, delay_p99_ns, delay_max_ns
    cdef readonly int64_t last_rx_ns, last_heartbeat_ns, last_test_request_ns
    cdef readonly int64_t last_reply_sent_ns, last_test_reply_ns, last_rtt_ns

    @property
    def backlog_pauses(self):
        """Always 0: the listener never pauses reading (kept for old readers)."""
        return 0

    def as_dict(self):
        """Every field by name."""
        return {name: getattr(self, name) for name in _STATS_FIELDS}

    def __repr__(self):
        return ("HeartbeatStats(test_requests=%d, replies_sent=%d, messages=%d, "
                "delivered=%d, backlog=%d, queued_bytes=%d, conflated=%d, dropped=%d, "
                "book_resets=%d, delay_p99_ns=%d)" % (
                    self.test_requests, self.replies_sent, self.messages, self.delivered,
                    self.backlog, self.queued_bytes, self.conflated, self.dropped,
                    self.book_resets, self.delay_p99_ns))


_STATS_FIELDS = (
    "heartbeats", "test_requests", "replies_sent", "probes_sent", "test_replies",
    "test_reply_errors", "messages", "binary_messages", "fragmented", "slow_path",
    "lane_slow_path", "hook_errors", "frame_errors", "delivered", "inline", "backlog",
    "backlog_peak", "priority_backlog", "queued_bytes", "queued_bytes_peak", "bound_hits",
    "conflated", "dropped", "dropped_bytes", "book_resets", "book_dropped", "drop_events",
    "delay_p50_ns", "delay_p99_ns", "delay_max_ns",
    "last_rx_ns", "last_heartbeat_ns", "last_test_request_ns", "last_reply_sent_ns",
    "last_test_reply_ns", "last_rtt_ns",
)


cdef extern from *:
    int __builtin_clzll(unsigned long long x) nogil


# Delivery delay histogram: bucket 4*b + f holds delays in [2^b * (4+f)/4, 2^b * (5+f)/4)
# ns (b = bit length - 1, f = the next two bits): ~19 % wide, 0 ns .. 2^63 ns.
DEF HIST = 256


cdef inline int hist_bucket(int64_t ns) noexcept nogil:
    cdef int b
    if ns < 4:
        return <int>(ns if ns > 0 else 0)
    b = 63 - __builtin_clzll(<unsigned long long>ns)
    return 4 * b + <int>((ns >> (b - 2)) & 3)


cdef inline int64_t hist_upper(int i) noexcept nogil:
    """The upper edge of bucket i (what a percentile reports: never an underestimate)."""
    cdef int b = i >> 2
    if i < 8:
        return i + 1
    return (<int64_t>(4 + (i & 3) + 1)) << (b - 2)


# Bytes counted per queued message on top of its payload: the bytes object header
# (33), the queue entry (~80) and the deque slot (8), rounded up. The byte bound
# (max_bytes) is on payload + ENTRY_OVERHEAD, so it tracks real memory.
DEF ENTRY_OVERHEAD = 128


@cython.final
@cython.no_gc
@cython.freelist(256)
cdef class _Msg:
    """One queued message. Holds no reference back to its channel, so no cycles."""
    cdef object payload       # bytes, or None once dropped (left in the FIFO)
    cdef str channel          # the channel ("" if none)
    cdef int64_t rx_ns        # receive time (CLOCK_MONOTONIC ns)
    cdef Py_ssize_t nbytes    # payload + ENTRY_OVERHEAD while live
    cdef int lane             # the queueing policy (L_ORDERED for all with lanes=False)
    cdef int hook_lane        # the lane the hook is told (the classifier's or the oracle's)
    cdef bint binary


@cython.final
cdef class _Chan:
    """Per-channel state while a backlog exists (cleared when the consumer catches up)."""
    cdef str name
    cdef _Msg pending         # CONFLATE: the undelivered message, or None
    cdef object entries       # BOOK: deque of this channel's live queued messages
    cdef Py_ssize_t book_bytes
    cdef uint64_t dropped     # ORDERED/CONFLATE: dropped this episode
    cdef bint announced       # on_drop already called this episode

    def __cinit__(self, str name):
        self.name = name
        self.entries = collections.deque()

DEF DEFAULT_MAX_BYTES = 256 * 1024 * 1024
# picows answers PING (and takes auto-ping PONGs) itself, so the frame that ends a read
# may never reach the listener with last_in_buffer set. A pause this long between the
# end of one frame and the next means a new socket read: the inline budget starts over.
DEF NEW_READ_GAP_NS = 20000
# A backlog episode (one on_drop per channel, one log line for the bound) ends when the
# consumer has worked off the queue, or when messages go inline again with nothing
# dropped or reset for this long (a reset can empty the queue in the middle of a flood).
DEF EPISODE_QUIET_NS = 1000000000


@cython.final
cdef class FastListener(WSListener):
    """picows listener for a Deribit connection; see ``_listener.pyi`` for the API."""

    cdef:
        readonly WSTransport transport
        object _on_message
        object _on_connected
        object _on_disconnected
        object _on_drop
        object _logger
        bint _debug
        object _loop
        # reply assembly
        char* _scratch
        bytes _template
        Py_ssize_t _tmpl_len
        Py_ssize_t _seq_off
        uint64_t _seq
        int64_t _sent_at[RTT_RING]
        # fragmented message being reassembled (0: none, else its opcode)
        int _frag_type
        char* _frag
        Py_ssize_t _frag_len
        Py_ssize_t _frag_cap
        readonly Py_ssize_t max_message_size
        # OTHER delivery: lanes (see the module docstring)
        readonly int64_t rx_ns
        readonly Py_ssize_t max_bytes
        readonly Py_ssize_t book_bytes
        readonly Py_ssize_t slice_size
        readonly bint lanes
        #: heartbeats and test_requests (answered here) also go to on_message, in order
        readonly bint deliver_heartbeats
        int64_t _slice_ns
        int64_t _batch_start
        int64_t _frame_end
        Py_ssize_t _inline_left
        bint _drain_scheduled
        # a protocol error failed the connection: nothing more is delivered
        bint _failed
        object _replies           # deque of _Msg: replies to requests (acks), first of all
        object _prio              # deque of _Msg: user.* notifications
        object _pub               # deque of _Msg: public data in arrival order
        dict _chans               # channel -> _Chan, while a backlog exists
        Py_ssize_t _n_queued      # live messages in _replies, _prio and _pub
        Py_ssize_t _queued_bytes  # their payloads + ENTRY_OVERHEAD (+ that of dead entries)
        bint _bound_logged
        int64_t _episode_start    # first queueing of the current episode (0: none)
        int64_t _last_loss        # last drop or book reset
        uint64_t _ep_dropped, _ep_dropped_bytes, _ep_conflated, _ep_resets
        uint64_t _hist[HIST]
        int64_t _delay_max
        # counters (see HeartbeatStats)
        uint64_t n_heartbeats, n_test_requests, n_replies_sent, n_probes_sent
        uint64_t n_test_replies, n_test_reply_errors, n_messages, n_binary
        uint64_t n_fragmented, n_slow_path, n_lane_slow_path, n_hook_errors, n_frame_errors
        uint64_t n_delivered, n_inline, n_backlog_peak, n_queued_bytes_peak, n_bound_hits
        uint64_t n_conflated, n_dropped, n_dropped_bytes, n_book_resets, n_book_dropped
        uint64_t n_drop_events
        int64_t t_rx, t_heartbeat, t_test_request, t_reply_sent, t_test_reply, t_rtt
        readonly object close_code
        readonly object close_reason
        readonly bytes last_error_reply

    def __cinit__(self):
        self._scratch = NULL
        self._frag = NULL

    def __init__(self, on_message=None, on_connected=None, on_disconnected=None, *,
                 logger=None, on_drop=None, Py_ssize_t max_bytes=DEFAULT_MAX_BYTES,
                 book_bytes=None, bint lanes=True, Py_ssize_t slice_size=256,
                 double slice_time=0.0002, Py_ssize_t max_message_size=DEFAULT_MAX_MESSAGE,
                 bint deliver_heartbeats=False, backlog_limit=None, overflow=None):
        if backlog_limit is not None or overflow is not None:
            raise ConfigurationError(
                "FastListener: backlog_limit and overflow are gone: the listener never stops "
                "reading the socket. Bound what it queues for a slow consumer in bytes with "
                "max_bytes= (default 256 MiB); past it the oldest public market data is "
                "dropped, counted and announced through on_drop (docs/ARCHITECTURE.md)")
        if slice_size < 1 or slice_time <= 0:
            raise ConfigurationError("slice_size must be at least 1 and slice_time positive")
        if max_bytes < 1:
            raise ConfigurationError("max_bytes must be positive (bytes queued for the consumer)")
        self.book_bytes = max(max_bytes // 16, 1) if book_bytes is None else book_bytes
        if self.book_bytes < 1:
            raise ConfigurationError("book_bytes must be positive (bytes queued per book channel)")
        self.max_bytes = max_bytes
        self.lanes = lanes
        self.deliver_heartbeats = deliver_heartbeats
        self._slice_ns = <int64_t>(slice_time * 1e9)
        self._on_message = on_message
        self._on_connected = on_connected
        self._on_disconnected = on_disconnected
        self._on_drop = on_drop
        self._logger = logger if logger is not None else _log
        self._debug = self._logger.isEnabledFor(logging.DEBUG)
        self._template = TEST_TEMPLATE
        self._tmpl_len = PyBytes_GET_SIZE(TEST_TEMPLATE)
        self._seq_off = SEQ_OFFSET
        if SEQ_DIGITS != 12:
            raise RuntimeError("drbfast.frames and the listener disagree on SEQ_DIGITS")
        self._scratch = <char*>malloc(HEADROOM + self._tmpl_len)
        if self._scratch == NULL:
            raise MemoryError()
        self.max_message_size = max_message_size
        self._replies = collections.deque()
        self._prio = collections.deque()
        self._pub = collections.deque()
        self._chans = {}
        self.slice_size = slice_size
        self._inline_left = slice_size

    def __dealloc__(self):
        free(self._scratch)
        free(self._frag)

    # ------------------------------------------------------------ picows callbacks

    cpdef on_ws_connected(self, WSTransport transport):
        self.transport = transport
        import asyncio
        self._loop = asyncio.get_running_loop()
        if self._on_connected is not None:
            self._on_connected(self)

    cpdef on_ws_disconnected(self, WSTransport transport):
        handshake = transport.close_handshake
        if handshake is not None and handshake.recv is not None:
            # picows reads a close without a status as 0; RFC 6455 7.1.5 calls it 1005.
            self.close_code = int(handshake.recv.code) or 1005
            self.close_reason = handshake.recv.reason or ""
        if self._on_disconnected is not None:
            self._on_disconnected(self)

    cpdef on_ws_frame(self, WSTransport transport, WSFrame frame):
        cdef int64_t t = now_ns()
        self.t_rx = t
        if self._batch_start == 0 or t - self._frame_end > NEW_READ_GAP_NS:
            # The first frame of a socket read: the inline budget starts over.
            self._batch_start = t
            self._inline_left = self.slice_size
        try:
            self._on_frame(transport, frame, t)
        except Exception:
            # Never lose an exception at the compiled boundary, never drop the socket
            # for one bad frame: log it, count it, keep serving.
            self.n_frame_errors += 1
            self._logger.exception("drbfast: error while handling a %s frame",
                                   WSMsgType(frame.msg_type).name)
        if frame.last_in_buffer:
            # The next frame comes from a new socket read.
            self._batch_start = 0
        self._frame_end = now_ns()

    cdef int _on_frame(self, WSTransport transport, WSFrame frame, int64_t t) except -1:
        cdef WSMsgType mt = frame.msg_type
        if self._failed:
            # picows may still hand over frames it parsed after the one that failed
            # the connection: RFC 6455 7.1.7, nothing more is processed.
            return 0
        if frame.rsv1 and mt != WSMsgType.CLOSE and mt != WSMsgType.PING and mt != WSMsgType.PONG:
            # RFC 6455 5.2: RSV1 needs a negotiated extension, and drbfast offers none.
            self._protocol_error(WSCloseCode.PROTOCOL_ERROR, "RSV1 set but no extension was negotiated")
            return 0
        if mt == WSMsgType.TEXT or mt == WSMsgType.BINARY:
            if self._frag_type != 0:
                # RFC 6455 5.4: a new data frame may not start inside a fragmented one.
                self._protocol_error(WSCloseCode.PROTOCOL_ERROR, "data frame inside a fragmented message")
                return 0
            if frame.fin:
                self._handle(frame.payload_ptr, frame.payload_size, mt == WSMsgType.BINARY, t)
            else:
                self._frag_type = <int>mt
                self._frag_len = 0
                self._append_fragment(frame.payload_ptr, frame.payload_size)
        elif mt == WSMsgType.CONTINUATION:
            if self._frag_type == 0:
                self._protocol_error(WSCloseCode.PROTOCOL_ERROR, "continuation frame with nothing to continue")
                return 0
            if not self._append_fragment(frame.payload_ptr, frame.payload_size):
                return 0
            if frame.fin:
                self.n_fragmented += 1
                mt = <WSMsgType>self._frag_type
                self._frag_type = 0
                self._handle(self._frag, self._frag_len, mt == WSMsgType.BINARY, t)
        elif mt == WSMsgType.CLOSE:
            if frame.payload_size == 0:
                # RFC 6455 7.1.5/7.4.1: a close without a status reads as 1005, a code
                # that must never be sent: answer 1000.
                self.close_code = 1005
                self.close_reason = ""
                transport.send_close(WSCloseCode.OK, b"")
            else:
                # RFC 6455 5.5.1: echo the close code, then drop the connection.
                self.close_code = int(frame.get_close_code())
                self.close_reason = frame.get_close_reason()
                transport.send_close(frame.get_close_code(), frame.get_close_message())
            transport.disconnect()
        # PING is answered by picows (enable_auto_pong); PONG needs nothing.
        return 0

    cdef bint _append_fragment(self, const char* ptr, Py_ssize_t size) except -1:
        cdef Py_ssize_t need = self._frag_len + size
        cdef Py_ssize_t cap
        cdef char* grown
        if need > self.max_message_size:
            self._frag_type = 0
            self._protocol_error(WSCloseCode.MESSAGE_TOO_BIG, "fragmented message too big")
            return False
        if need > self._frag_cap:
            cap = max(need, 2 * self._frag_cap, 4096)
            grown = <char*>realloc(self._frag, cap)
            if grown == NULL:
                raise MemoryError()
            self._frag = grown
            self._frag_cap = cap
        if size:
            memcpy(self._frag + self._frag_len, ptr, size)
        self._frag_len = need
        return True

    cdef int _protocol_error(self, WSCloseCode code, str reason) except -1:
        self._failed = True
        self._logger.error("drbfast: %s; closing the connection", reason)
        if self.transport is not None:
            self.transport.send_close(code, reason.encode())
            self.transport.disconnect()
        return 0

    # ------------------------------------------------------------ one message

    cdef int _handle(self, const char* ptr, Py_ssize_t size, bint binary, int64_t t) except -1:
        cdef ClassifyResult r
        cdef int kind
        if binary:
            self.n_binary += 1
            r.lane = L_ORDERED
            r.chan_len = 0
            self._deliver(ptr, size, True, &r, t)
            return 0
        kind = classify_msg(ptr, size, &r)
        if kind == K_UNKNOWN:
            # The fast matcher deferred: ask the full parse before anything is answered
            # or delivered. Rare (very deep nesting, giant integers).
            self.n_slow_path += 1
            raw = PyBytes_FromStringAndSize(ptr, size)
            kind = <int>classify_reference(raw)
            r.is_error = 0
            r.seq = -1
            r.lane = L_UNKNOWN
            r.chan_len = 0
            if kind == K_TEST_REPLY:
                # Keep what the fast matcher would have told: error or not, and the seq.
                r.is_error, r.seq = _reply_detail(raw)
        if kind == K_TEST_REQUEST:
            self.n_test_requests += 1
            self.t_test_request = t
            self._send_test()
            self.n_replies_sent += 1
            self.t_reply_sent = self._sent_at[self._seq % RTT_RING]
            if self.deliver_heartbeats:
                self._deliver_copy(ptr, size, &r, t)
        elif kind == K_HEARTBEAT:
            # A plain heartbeat needs no answer (PROTOCOL.md 1.7; answering costs credits).
            self.n_heartbeats += 1
            self.t_heartbeat = t
            if self.deliver_heartbeats:
                self._deliver_copy(ptr, size, &r, t)
        elif kind == K_TEST_REPLY:
            self.n_test_replies += 1
            self.t_test_reply = t
            if r.seq >= 0 and <uint64_t>r.seq <= self._seq and self._seq - <uint64_t>r.seq < RTT_RING:
                self.t_rtt = t - self._sent_at[r.seq % RTT_RING]
            if r.is_error:
                self.n_test_reply_errors += 1
                self.last_error_reply = PyBytes_FromStringAndSize(ptr, min(size, 4096))
                self._logger.warning("drbfast: Deribit answered an engine request with an "
                                     "error: %r", self.last_error_reply[:512])
        else:
            self._deliver(ptr, size, False, &r, t)
        return 0

    cdef int _deliver_copy(self, const char* ptr, Py_ssize_t size, ClassifyResult* r, int64_t t) except -1:
        """deliver_heartbeats: the heartbeat (already answered) also goes to the hook, in
        the order it arrived among the other messages (the ordered lane, no channel)."""
        r.lane = L_ORDERED
        r.chan_len = 0
        self._deliver(ptr, size, False, r, t)
        return 0

    cdef int _send_test(self) except -1:
        """Send the engine's public/test now: copy the template into the scratch buffer,
        patch the 12 sequence digits in place, let picows mask it there and write it."""
        cdef char* msg = self._scratch + HEADROOM
        cdef char* digit
        cdef uint64_t seq
        cdef int i
        if self.transport is None:
            raise RuntimeError("a test_request arrived on a listener with no connection")
        self._seq += 1
        seq = self._seq
        memcpy(msg, PyBytes_AS_STRING(self._template), self._tmpl_len)
        digit = msg + self._seq_off + 11
        for i in range(12):
            digit[0] = <char>(48 + seq % 10)
            seq //= 10
            digit -= 1
        self._sent_at[self._seq % RTT_RING] = now_ns()
        self.transport.send_reuse_external_buffer(WSMsgType.TEXT, msg, self._tmpl_len)
        return 0

    cdef int _deliver(self, const char* ptr, Py_ssize_t size, bint binary,
                      ClassifyResult* r, int64_t t) except -1:
        cdef bytes payload
        cdef int lane, qlane
        cdef str channel
        cdef bint inline_ok = (self._inline_left > 0 and
                               (self._batch_start == 0 or t - self._batch_start < self._slice_ns))
        self.n_messages += 1
        if inline_ok and self._n_queued == 0:
            # Nothing queued and the consumer keeps up (at most slice_size messages or
            # slice_time per socket read): call the hook right away, no lane work. Past
            # that, frames still to come in this read, test_requests among them, must
            # not wait for the consumer.
            self._inline_left -= 1
            self.n_inline += 1
            if self._episode_start != 0 and t - self._last_loss > EPISODE_QUIET_NS:
                self._end_episode()   # keeping up, and nothing lost for a while
            # The hook learns the lane and the channel the classifier found (UNKNOWN:
            # not production's layout, the consumer's parse decides).
            self._call_hook(PyBytes_FromStringAndSize(ptr, size), binary, r.lane,
                            _channel_of(ptr, r), t)
            return 0
        payload = PyBytes_FromStringAndSize(ptr, size)
        lane = r.lane
        if lane == L_UNKNOWN and self.lanes:
            # Not Deribit's production layout: the oracle decides (a full parse).
            self.n_lane_slow_path += 1
            lane_obj, channel = lane_reference(payload)
            lane = <int>lane_obj
        else:
            channel = _channel_of(ptr, r)
        # lanes=False: one FIFO for everything (websockets semantics): never reordered,
        # never conflated; only the byte bound drops, oldest first. The hook is still
        # told the message's own lane.
        qlane = lane if self.lanes else L_ORDERED
        if (qlane == L_PRIORITY and inline_ok and len(self._replies) == 0
                and (len(channel) == 0 or len(self._prio) == 0)):
            # A reply or a private notification goes ahead of queued market data; a
            # reply (no channel) also ahead of queued private notifications: an ack
            # must not wait behind a burst of user.orders updates.
            self._inline_left -= 1
            self.n_inline += 1
            self._call_hook(payload, binary, lane, channel, t)
            return 0
        self._enqueue(payload, binary, qlane, lane, channel, t)
        if not self._drain_scheduled and self._n_queued > 0:
            self._drain_scheduled = True
            self._loop.call_soon(self._drain)
        return 0

    cdef _Chan _chan(self, str name):
        cdef _Chan c = self._chans.get(name)
        if c is None:
            c = _Chan(name)
            self._chans[name] = c
        return c

    cdef int _enqueue(self, bytes payload, bint binary, int lane, int hook_lane,
                      str channel, int64_t t) except -1:
        cdef Py_ssize_t nbytes = PyBytes_GET_SIZE(payload) + ENTRY_OVERHEAD
        cdef _Msg m
        cdef _Chan c = None
        if self._n_queued == 0 and self._episode_start == 0:
            self._episode_start = t
        if lane == L_CONFLATE:
            c = self._chan(channel)
            m = c.pending
            if m is not None:
                # One undelivered message per latest-value channel: the newest takes
                # the older one's place in the queue.
                self._queued_bytes += nbytes - m.nbytes
                m.payload = payload
                m.nbytes = nbytes
                m.rx_ns = t
                self.n_conflated += 1
                self._ep_conflated += 1
                if self._queued_bytes > self.max_bytes:
                    self._make_room(0)
                self._note_peak()
                return 0
        elif lane == L_BOOK:
            c = self._chan(channel)
            if c.book_bytes + nbytes > self.book_bytes:
                # The book fell behind its share: a late backlog of changes is worth
                # less than a fresh snapshot. Drop its queue and this change.
                self._reset_book(c, 1)
                return 0
        if self._queued_bytes + nbytes > self.max_bytes:
            self._make_room(nbytes)
        m = _Msg.__new__(_Msg)
        m.payload = payload
        m.channel = channel
        m.rx_ns = t
        m.nbytes = nbytes
        m.lane = lane
        m.hook_lane = hook_lane
        m.binary = binary
        if lane == L_PRIORITY:
            (self._replies if len(channel) == 0 else self._prio).append(m)
        else:
            self._pub.append(m)
            if lane == L_CONFLATE:
                c.pending = m
            elif lane == L_BOOK:
                c = self._chan(channel)  # _make_room may have reset and forgotten nothing; same object
                c.entries.append(m)
                c.book_bytes += nbytes
        self._queued_bytes += nbytes
        self._n_queued += 1
        self._note_peak()
        return 0

    cdef inline void _note_peak(self):
        if <uint64_t>self._n_queued > self.n_backlog_peak:
            self.n_backlog_peak = self._n_queued
        if <uint64_t>self._queued_bytes > self.n_queued_bytes_peak:
            self.n_queued_bytes_peak = self._queued_bytes

    cdef int _make_room(self, Py_ssize_t need) except -1:
        """At the byte bound: drop the oldest public data until ``need`` more bytes fit.
        Priority messages are never dropped (with nothing public left, the bound is
        exceeded by what they hold)."""
        cdef _Msg m
        cdef _Chan c
        cdef Py_ssize_t before = self._queued_bytes
        cdef Py_ssize_t n_before = self._n_queued
        self.n_bound_hits += 1
        while self._queued_bytes + need > self.max_bytes and self._pub:
            m = self._pub.popleft()
            if m.payload is None:
                self._queued_bytes -= m.nbytes      # a dead entry: its overhead only
                continue
            if m.lane == L_BOOK:
                c = self._chans[m.channel]
                self._reset_book(c, 0)              # m is its oldest entry: now dead
                self._queued_bytes -= m.nbytes
                continue
            self._queued_bytes -= m.nbytes
            self._n_queued -= 1
            self.n_dropped += 1
            self._ep_dropped += 1
            self._last_loss = now_ns()
            self.n_dropped_bytes += m.nbytes - ENTRY_OVERHEAD
            self._ep_dropped_bytes += m.nbytes - ENTRY_OVERHEAD
            c = self._chan(m.channel)
            if m.lane == L_CONFLATE and c.pending is m:
                c.pending = None
            m.payload = None
            c.dropped += 1
            if not c.announced:
                c.announced = True
                self._announce("dropped", c.name, c.dropped)
        if not self._bound_logged:
            self._bound_logged = True
            self._logger.warning(
                "drbfast: the consumer is behind: %d bytes in %d messages queued reached "
                "max_bytes=%d; dropping the oldest public market data (replies and user.* "
                "notifications are kept; counted in stats.dropped)",
                before, n_before, self.max_bytes)
        return 0

    cdef int _reset_book(self, _Chan c, Py_ssize_t extra) except -1:
        """Drop every queued change of book channel ``c`` (plus ``extra`` not queued):
        the consumer resubscribes for a snapshot instead of replaying a late backlog."""
        cdef _Msg m
        cdef Py_ssize_t count = len(c.entries) + extra
        for m in c.entries:
            self._queued_bytes -= m.nbytes - ENTRY_OVERHEAD
            m.nbytes = ENTRY_OVERHEAD               # dead, left in the FIFO until popped
            m.payload = None
            self._n_queued -= 1
        c.entries.clear()
        c.book_bytes = 0
        self.n_book_resets += 1
        self._ep_resets += 1
        self._last_loss = now_ns()
        self.n_book_dropped += count
        if not c.announced:
            c.announced = True
            self._announce("book_reset", c.name, count)
        return 0

    cdef int _announce(self, str kind, str channel, uint64_t count) except -1:
        self.n_drop_events += 1
        self._logger.warning("drbfast: consumer behind: %s on %r (%d messages)", kind, channel, count)
        if self._on_drop is None:
            return 0
        try:
            self._on_drop(kind, channel, count)
        except Exception:
            self.n_hook_errors += 1
            self._logger.exception("drbfast: the on_drop hook raised; the connection stays up")
        return 0

    cdef inline void _call_hook(self, object payload, bint binary, int lane, str channel,
                                int64_t rx):
        cdef int64_t delay = now_ns() - rx
        self.n_delivered += 1
        self._hist[hist_bucket(delay)] += 1
        if delay > self._delay_max:
            self._delay_max = delay
        if self._on_message is None:
            return
        self.rx_ns = rx
        try:
            self._on_message(payload, binary, lane, channel, rx)
        except Exception:
            self.n_hook_errors += 1
            self._logger.exception("drbfast: the on_message hook raised; the connection stays up")

    def _drain(self):
        """Hand queued messages to the hook, priority first, for at most ``slice_size``
        messages or ``slice_time``, then yield to the loop so the socket is read again."""
        cdef Py_ssize_t n = self.slice_size
        cdef int64_t deadline = now_ns() + self._slice_ns
        cdef _Msg m
        cdef _Chan c
        replies = self._replies
        prio = self._prio
        pub = self._pub
        self._drain_scheduled = False
        # This runs between two socket reads: the next read gets a fresh inline budget.
        self._inline_left = self.slice_size
        self._batch_start = 0
        while n > 0:
            if replies:
                m = replies.popleft()
            elif prio:
                m = prio.popleft()
            elif pub:
                m = pub.popleft()
                if m.payload is None:
                    self._queued_bytes -= m.nbytes
                    continue
                if m.lane == L_CONFLATE:
                    c = self._chans.get(m.channel)
                    if c is not None and c.pending is m:
                        c.pending = None
                elif m.lane == L_BOOK:
                    c = self._chans[m.channel]
                    c.entries.popleft()
                    c.book_bytes -= m.nbytes
            else:
                break
            self._queued_bytes -= m.nbytes
            self._n_queued -= 1
            payload = m.payload
            m.payload = None
            self._call_hook(payload, m.binary, m.hook_lane, m.channel, m.rx_ns)
            n -= 1
            if now_ns() >= deadline:
                break
        if self._n_queued > 0:
            self._drain_scheduled = True
            self._loop.call_soon(self._drain)
            return
        while pub:                            # only dead entries are left
            self._queued_bytes -= (<_Msg>pub.popleft()).nbytes
        if n < self.slice_size:
            # The consumer worked the queue off (a book reset that emptied it does not
            # count: the flood that caused it may still be on).
            self._end_episode()

    cdef int _end_episode(self) except -1:
        """The consumer caught up: forget per-channel state, log what the episode cost."""
        cdef int64_t took
        if self._ep_dropped or self._ep_resets:
            took = now_ns() - self._episode_start
            self._logger.warning(
                "drbfast: consumer caught up after %.3f s behind: dropped %d messages "
                "(%d bytes), reset %d books, conflated %d", took / 1e9, self._ep_dropped,
                self._ep_dropped_bytes, self._ep_resets, self._ep_conflated)
        self._chans.clear()
        self._ep_dropped = self._ep_dropped_bytes = self._ep_conflated = self._ep_resets = 0
        self._episode_start = 0
        self._bound_logged = False
        return 0

    # ------------------------------------------------------------ Python API

    def send(self, data):
        """Send a TEXT message (``str`` or bytes-like)."""
        if self.transport is None:
            raise RuntimeError("the listener is not connected")
        self.transport.send(WSMsgType.TEXT, data)

    def send_binary(self, data):
        """Send a BINARY message."""
        if self.transport is None:
            raise RuntimeError("the listener is not connected")
        self.transport.send(WSMsgType.BINARY, data)

    def send_probe(self):
        """Send an engine ``public/test`` now (a client-side liveness probe) and return
        its sequence number; its reply is counted, timed (``last_rtt_ns``) and dropped."""
        if self.transport is None:
            raise RuntimeError("the listener is not connected")
        self._send_test()
        self.n_probes_sent += 1
        return self._seq

    def close(self, int code=1000, reason=""):
        """Start the closing handshake and drop the connection."""
        if self.transport is None or self.transport.is_disconnected:
            return
        if isinstance(reason, str):
            reason = reason.encode()
        self.transport.send_close(<WSCloseCode>code, reason)
        self.transport.disconnect()

    @property
    def is_connected(self):
        """True between the handshake and the disconnect."""
        return self.transport is not None and not self.transport.is_disconnected

    @property
    def sequence(self):
        """Sequence number of the engine's last ``public/test`` (0 if none yet)."""
        return self._seq

    @property
    def backlog_limit(self):
        """Deprecated: there is no message-count limit any more (see ``max_bytes``);
        always ``sys.maxsize``, so old "did the listener pause?" checks say no."""
        return sys.maxsize

    cdef int64_t _percentile(self, uint64_t total, double q):
        cdef uint64_t want = <uint64_t>(total * q)
        cdef uint64_t seen = 0
        cdef int i
        if total == 0:
            return 0
        if want >= total:
            want = total - 1
        for i in range(HIST):
            seen += self._hist[i]
            if seen > want:
                return min(hist_upper(i), self._delay_max)
        return self._delay_max

    @property
    def stats(self):
        """A :class:`HeartbeatStats` snapshot."""
        cdef HeartbeatStats s = HeartbeatStats.__new__(HeartbeatStats)
        cdef uint64_t total = 0
        cdef int i
        for i in range(HIST):
            total += self._hist[i]
        s.heartbeats = self.n_heartbeats
        s.test_requests = self.n_test_requests
        s.replies_sent = self.n_replies_sent
        s.probes_sent = self.n_probes_sent
        s.test_replies = self.n_test_replies
        s.test_reply_errors = self.n_test_reply_errors
        s.messages = self.n_messages
        s.binary_messages = self.n_binary
        s.fragmented = self.n_fragmented
        s.slow_path = self.n_slow_path
        s.lane_slow_path = self.n_lane_slow_path
        s.hook_errors = self.n_hook_errors
        s.frame_errors = self.n_frame_errors
        s.delivered = self.n_delivered
        s.inline = self.n_inline
        s.backlog = self._n_queued
        s.backlog_peak = self.n_backlog_peak
        s.priority_backlog = len(self._replies) + len(self._prio)
        s.queued_bytes = self._queued_bytes
        s.queued_bytes_peak = self.n_queued_bytes_peak
        s.bound_hits = self.n_bound_hits
        s.conflated = self.n_conflated
        s.dropped = self.n_dropped
        s.dropped_bytes = self.n_dropped_bytes
        s.book_resets = self.n_book_resets
        s.book_dropped = self.n_book_dropped
        s.drop_events = self.n_drop_events
        s.delay_p50_ns = self._percentile(total, 0.50)
        s.delay_p99_ns = self._percentile(total, 0.99)
        s.delay_max_ns = self._delay_max
        s.last_rx_ns = self.t_rx
        s.last_heartbeat_ns = self.t_heartbeat
        s.last_test_request_ns = self.t_test_request
        s.last_reply_sent_ns = self.t_reply_sent
        s.last_test_reply_ns = self.t_test_reply
        s.last_rtt_ns = self.t_rtt
        return s

    def feed(self, payload, bint binary=False):
        """Run one complete message through the receive path as if it had been read
        from the socket (tests and benchmarks). A TEST_REQUEST needs a connection."""
        cdef const unsigned char[::1] view = payload
        cdef Py_ssize_t n = view.shape[0]
        self.t_rx = now_ns()
        self._inline_left = self.slice_size
        self._batch_start = 0
        cdef const char* ptr = EMPTY
        if n > 0:
            ptr = <const char*>&view[0]
        self._handle(ptr, n, binary, self.t_rx)

    def feed_many(self, payload, Py_ssize_t count):
        """Run the same message through the receive path ``count`` times in a C loop;
        return the mean nanoseconds per message (benchmarks)."""
        cdef const unsigned char[::1] view = payload
        cdef Py_ssize_t n = view.shape[0]
        cdef const char* ptr = EMPTY
        if n > 0:
            ptr = <const char*>&view[0]
        cdef Py_ssize_t i
        cdef int64_t t0 = now_ns()
        for i in range(count):
            self._inline_left = self.slice_size
            self._handle(ptr, n, False, t0)
        return <double>(now_ns() - t0) / max(count, 1)
