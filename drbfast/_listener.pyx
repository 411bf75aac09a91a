# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""FastListener: the picows listener that keeps a Deribit connection alive by itself.

Every frame picows reads comes through ``on_ws_frame``. A complete TEXT message is
classified from picows' read buffer in place (no copy, no parse). A ``test_request`` is
answered right there with the prebuilt ``public/test`` (PROTOCOL.md 1.3: the answer is a
``public/test`` request; the server closes with 4000 otherwise). Heartbeats and the
replies to the engine's own ``public/test`` are counted and dropped. Every other message
is copied to ``bytes`` once and handed to the ``on_message`` hook, in order: inline while
the consumer keeps up, otherwise through a bounded backlog that is worked off in slices,
so a ``test_request`` behind a flood is still answered as soon as its bytes are read.
"""

cimport cython
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from libc.stdint cimport int64_t, uint64_t
from libc.stdlib cimport free, malloc, realloc
from libc.string cimport memcpy

from picows.picows cimport WSCloseCode, WSFrame, WSListener, WSMsgType, WSTransport

from drbfast._classify cimport (ClassifyResult, K_HEARTBEAT, K_OTHER, K_TEST_REPLY,
                                K_TEST_REQUEST, K_UNKNOWN, classify_msg)

import collections
import logging

from drbfast.frames import SEQ_DIGITS, SEQ_OFFSET, TEST_TEMPLATE
from drbfast.oracle import classify_reference, parse_first_wins
from drbfast.frames import ENGINE_ID_PREFIX


def _reply_detail(bytes raw):
    """(is_error, seq) of an engine reply, from a full parse (slow path only)."""
    msg = parse_first_wins(raw)
    ident = msg["id"][len(ENGINE_ID_PREFIX):]
    seq = int(ident) if ident.isascii() and ident.isdigit() and len(ident) <= 18 else -1
    return (1 if "error" in msg else 0), seq

cdef const char* EMPTY = b""

cdef extern from "<time.h>" nogil:
    ctypedef long time_t
    cdef struct timespec:
        time_t tv_sec
        long tv_nsec
    int clock_gettime(int clk_id, timespec* tp)
    int CLOCK_MONOTONIC


cdef inline int64_t now_ns() noexcept nogil:
    cdef timespec ts
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return <int64_t>ts.tv_sec * 1000000000 + ts.tv_nsec


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
    """A snapshot of a listener's heartbeat counters. Timestamps are CLOCK_MONOTONIC
    nanoseconds (:func:`monotonic_ns`), 0 when the event has not happened yet."""

    cdef readonly uint64_t heartbeats, test_requests, replies_sent, probes_sent
    cdef readonly uint64_t test_replies, test_reply_errors, messages, binary_messages
    cdef readonly uint64_t fragmented, slow_path, hook_errors, frame_errors
    cdef readonly uint64_t backlog, backlog_peak, backlog_pauses, dropped
    cdef readonly int64_t last_rx_ns, last_heartbeat_ns, last_test_request_ns
    cdef readonly int64_t last_reply_sent_ns, last_test_reply_ns, last_rtt_ns

    def as_dict(self):
        """Every field by name."""
        return {name: getattr(self, name) for name in _STATS_FIELDS}

    def __repr__(self):
        return ("HeartbeatStats(heartbeats=%d, test_requests=%d, replies_sent=%d, "
                "test_replies=%d, messages=%d, backlog=%d, last_rtt_ns=%d)" % (
                    self.heartbeats, self.test_requests, self.replies_sent,
                    self.test_replies, self.messages, self.backlog, self.last_rtt_ns))


_STATS_FIELDS = (
    "heartbeats", "test_requests", "replies_sent", "probes_sent", "test_replies",
    "test_reply_errors", "messages", "binary_messages", "fragmented", "slow_path",
    "hook_errors", "frame_errors", "backlog", "backlog_peak", "backlog_pauses", "dropped",
    "last_rx_ns", "last_heartbeat_ns", "last_test_request_ns", "last_reply_sent_ns",
    "last_test_reply_ns", "last_rtt_ns",
)


@cython.final
cdef class _Binary:
    """A queued BINARY message (rare: Deribit sends text)."""
    cdef readonly bytes payload

    def __cinit__(self, bytes payload):
        self.payload = payload


@cython.final
cdef class FastListener(WSListener):
    """picows listener for a Deribit connection; see ``_listener.pyi`` for the API."""

    cdef:
        readonly WSTransport transport
        object _on_message
        object _on_connected
        object _on_disconnected
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
        # OTHER delivery
        object _backlog
        object _backlog_append
        readonly Py_ssize_t backlog_limit
        readonly Py_ssize_t slice_size
        int64_t _slice_ns
        int64_t _batch_start
        readonly str overflow
        bint _drop_on_overflow
        bint _drain_scheduled
        bint _paused
        Py_ssize_t _inline_left
        # counters (see HeartbeatStats)
        uint64_t n_heartbeats, n_test_requests, n_replies_sent, n_probes_sent
        uint64_t n_test_replies, n_test_reply_errors, n_messages, n_binary
        uint64_t n_fragmented, n_slow_path, n_hook_errors, n_frame_errors
        uint64_t n_backlog_peak, n_backlog_pauses, n_dropped
        int64_t t_rx, t_heartbeat, t_test_request, t_reply_sent, t_test_reply, t_rtt
        readonly object close_code
        readonly object close_reason
        readonly bytes last_error_reply

    def __cinit__(self):
        self._scratch = NULL
        self._frag = NULL

    def __init__(self, on_message=None, on_connected=None, on_disconnected=None, *,
                 logger=None, Py_ssize_t backlog_limit=50_000, Py_ssize_t slice_size=256,
                 double slice_time=0.0002, str overflow="pause",
                 Py_ssize_t max_message_size=DEFAULT_MAX_MESSAGE):
        if backlog_limit < 1 or slice_size < 1 or slice_time <= 0:
            raise ValueError("backlog_limit and slice_size must be at least 1, slice_time positive")
        self._slice_ns = <int64_t>(slice_time * 1e9)
        if overflow not in ("pause", "drop"):
            raise ValueError("overflow must be 'pause' (stop reading until the backlog "
                             "halves) or 'drop' (drop and count new messages)")
        self._on_message = on_message
        self._on_connected = on_connected
        self._on_disconnected = on_disconnected
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
        self._backlog = collections.deque()
        self._backlog_append = self._backlog.append
        self.backlog_limit = backlog_limit
        self.slice_size = slice_size
        self._inline_left = slice_size
        self.overflow = overflow
        self._drop_on_overflow = overflow == "drop"

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
            self.close_code = int(handshake.recv.code)
            self.close_reason = handshake.recv.reason
        if self._on_disconnected is not None:
            self._on_disconnected(self)

    cpdef on_ws_frame(self, WSTransport transport, WSFrame frame):
        cdef int64_t t = now_ns()
        self.t_rx = t
        if self._batch_start == 0:
            self._batch_start = t
        try:
            self._on_frame(transport, frame, t)
        except Exception:
            # Never lose an exception at the compiled boundary, never drop the socket
            # for one bad frame: log it, count it, keep serving.
            self.n_frame_errors += 1
            self._logger.exception("drbfast: error while handling a %s frame",
                                   WSMsgType(frame.msg_type).name)
        if frame.last_in_buffer:
            # The next frame comes from a new socket read: the inline budget starts over.
            self._inline_left = self.slice_size
            self._batch_start = 0

    cdef int _on_frame(self, WSTransport transport, WSFrame frame, int64_t t) except -1:
        cdef WSMsgType mt = frame.msg_type
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
            self._deliver(ptr, size, True)
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
            if kind == K_TEST_REPLY:
                # Keep what the fast matcher would have told: error or not, and the seq.
                r.is_error, r.seq = _reply_detail(raw)
        if kind == K_TEST_REQUEST:
            self.n_test_requests += 1
            self.t_test_request = t
            self._send_test()
            self.n_replies_sent += 1
            self.t_reply_sent = self._sent_at[self._seq % RTT_RING]
        elif kind == K_HEARTBEAT:
            # A plain heartbeat needs no answer (PROTOCOL.md 1.7; answering costs credits).
            self.n_heartbeats += 1
            self.t_heartbeat = t
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
            self._deliver(ptr, size, False)
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

    cdef int _deliver(self, const char* ptr, Py_ssize_t size, bint binary) except -1:
        cdef bytes payload
        cdef Py_ssize_t depth
        self.n_messages += 1
        if (self._inline_left > 0 and not self._drain_scheduled
                and (self._batch_start == 0 or self.t_rx - self._batch_start < self._slice_ns)):
            # Nothing queued and the consumer keeps up (at most slice_size messages or
            # slice_time per socket read): call the hook right away. Past that, frames
            # still to come in this read, test_requests among them, must not wait.
            self._inline_left -= 1
            self._call_hook(PyBytes_FromStringAndSize(ptr, size), binary)
            return 0
        depth = len(self._backlog)
        if depth >= self.backlog_limit and self._drop_on_overflow:
            self.n_dropped += 1
            if self.n_dropped == 1 or self.n_dropped % 10000 == 0:
                self._logger.warning("drbfast: backlog full (%d messages): dropped %d so far",
                                     depth, self.n_dropped)
            return 0
        # Text payloads go in as plain bytes, which the cyclic GC does not track: a
        # backlog of 100k (payload, flag) tuples made every collection walk them all.
        payload = PyBytes_FromStringAndSize(ptr, size)
        self._backlog_append(_Binary(payload) if binary else payload)
        depth += 1
        if depth > <Py_ssize_t>self.n_backlog_peak:
            self.n_backlog_peak = depth
        if not self._drain_scheduled:
            self._drain_scheduled = True
            self._loop.call_soon(self._drain)
        if depth >= self.backlog_limit and not self._paused:
            # Bounded memory, no loss: stop reading the socket until the consumer has
            # worked off half the backlog. TCP pushes back on the server meanwhile.
            self._paused = True
            self.n_backlog_pauses += 1
            self._logger.warning("drbfast: %d messages queued for the consumer; pausing "
                                 "reads until it catches up", depth)
            self.transport.underlying_transport.pause_reading()
        return 0

    cdef inline void _call_hook(self, object payload, bint binary):
        if self._on_message is None:
            return
        try:
            self._on_message(payload, binary)
        except Exception:
            self.n_hook_errors += 1
            self._logger.exception("drbfast: the on_message hook raised; the connection stays up")

    def _drain(self):
        """Work off queued messages for at most ``slice_size`` messages or
        ``slice_time``, then yield to the loop so the socket is read again."""
        cdef Py_ssize_t n = self.slice_size
        cdef int64_t deadline = now_ns() + self._slice_ns
        backlog = self._backlog
        while n > 0 and backlog:
            item = backlog.popleft()
            if type(item) is bytes:
                self._call_hook(item, False)
            else:
                self._call_hook((<_Binary>item).payload, True)
            n -= 1
            if now_ns() >= deadline:
                break
        if backlog:
            self._loop.call_soon(self._drain)
        else:
            self._drain_scheduled = False
        if self._paused and len(backlog) <= self.backlog_limit // 2:
            self._paused = False
            if self.transport is not None and not self.transport.is_disconnected:
                self.transport.underlying_transport.resume_reading()

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
    def stats(self):
        """A :class:`HeartbeatStats` snapshot."""
        cdef HeartbeatStats s = HeartbeatStats.__new__(HeartbeatStats)
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
        s.hook_errors = self.n_hook_errors
        s.frame_errors = self.n_frame_errors
        s.backlog = len(self._backlog)
        s.backlog_peak = self.n_backlog_peak
        s.backlog_pauses = self.n_backlog_pauses
        s.dropped = self.n_dropped
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
