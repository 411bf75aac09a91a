# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""The byte classifier: sorts a Deribit message into heartbeat traffic or "other".

It never builds a Python object and never parses JSON into values. Two layers:

1. Exact and prefix matches for the layouts Deribit really sends (PROTOCOL.md 1.1, 3.2,
   4.1): the production heartbeat frames byte for byte, and the ``{"jsonrpc":"2.0",``
   prefix of every response and notification, which decides "other" after ~30 bytes
   whatever the message size.
2. A strict, validating single-pass scanner for any other layout (any key order,
   whitespace, ``\\uXXXX`` escapes, extra keys, duplicate keys: the first one counts).
   It agrees with :func:`drbfast.oracle.classify_reference` on every input, or says
   UNKNOWN (nesting deeper than MAX_DEPTH, integers longer than Python accepts), and the
   caller then asks the oracle.

Early exits are exact whatever follows: once the first ``method`` is known not to be
``"heartbeat"``, or the first ``id`` is known not to be an engine id, the message is OTHER
under every rule (see the oracle), valid or not.
"""

from libc.string cimport memcmp
from libc.stdint cimport int64_t

from drbfast._clock cimport now_ns
from drbfast._classify cimport (ClassifyResult, K_OTHER, K_HEARTBEAT, K_TEST_REQUEST,
                                K_TEST_REPLY, K_UNKNOWN, L_UNKNOWN, L_PRIORITY, L_ORDERED,
                                L_CONFLATE, L_BOOK)

from drbfast._scan cimport (ST_DEFER, ST_OK, plain_run, scan_string, skip_string, skip_value,
                            skip_ws, uchar)

cdef const char* EMPTY = b""

# Production frames (PROTOCOL.md 1.1): the test_request is a live capture; its key order
# (params, method, jsonrpc) is the reverse of every other server message. The plain
# heartbeat is inferred to share that layout. The jsonrpc-first variants are what a
# server following the docs' notification layout would send.
cdef const char* TR_PROD = b'{"params":{"type":"test_request"},"method":"heartbeat","jsonrpc":"2.0"}'
cdef const char* HB_PROD = b'{"params":{"type":"heartbeat"},"method":"heartbeat","jsonrpc":"2.0"}'
cdef const char* TR_DOCS = b'{"jsonrpc":"2.0","method":"heartbeat","params":{"type":"test_request"}}'
cdef const char* HB_DOCS = b'{"jsonrpc":"2.0","method":"heartbeat","params":{"type":"heartbeat"}}'
DEF TR_LEN = 71
DEF HB_LEN = 68

# Every live response and notification starts with this (PROTOCOL.md 2, 4.1).
cdef const char* JSONRPC_PREFIX = b'{"jsonrpc":"2.0",'
DEF JSONRPC_PREFIX_LEN = 17

# A notification in Deribit's production layout (PROTOCOL.md 4.1: jsonrpc, method,
# params; channel before data): the channel name starts right after these bytes
# (drbfast.frames.NOTIFICATION_PREFIX, the one definition; 62 bytes). Held in a cdef
# global, which Python code cannot rebind under the pointer.
from drbfast.frames import NOTIFICATION_PREFIX
cdef bytes _SUB_PREFIX = NOTIFICATION_PREFIX
cdef const char* SUB_PREFIX = _SUB_PREFIX
cdef Py_ssize_t SUB_PREFIX_LEN = len(_SUB_PREFIX)

# The engine's public/test id prefix, from its one definition.
from drbfast.frames import ENGINE_ID_PREFIX
cdef bytes _ENGINE_PREFIX = ENGINE_ID_PREFIX.encode("ascii")
cdef const char* ENGINE_PREFIX = _ENGINE_PREFIX
cdef int ENGINE_PREFIX_LEN = <int>len(_ENGINE_PREFIX)

DEF MAX_DEPTH = 256         # deeper nesting: UNKNOWN (the oracle decides); <= SCAN_MAX_DEPTH
DEF DECODE_CAP = 32         # decoded string prefix kept for comparisons

# Key ids
DEF KEY_OTHER = 0
DEF KEY_METHOD = 1
DEF KEY_PARAMS = 2
DEF KEY_ID = 3
DEF KEY_RESULT = 4
DEF KEY_ERROR = 5
DEF KEY_TYPE = 6

cdef inline const uchar* str_token(const uchar* p, const uchar* end, char* buf,
                                   const char** txt, int* n) noexcept nogil:
    """Read a JSON string whose opening quote is at p[-1]. On return *txt/*n give its
    text: the raw bytes when they are plain ASCII (no copy), else the decoded prefix in
    buf (*n < 0 when that is only a prefix: see scan_string). NULL if invalid."""
    cdef const uchar* start = p
    p = plain_run(p, end)
    if p < end and p[0] == 34:
        txt[0] = <const char*>start
        n[0] = <int>(p - start)   # raw bytes are the text: no cap needed
        return p + 1
    txt[0] = buf
    return scan_string(start, end, buf, n, DECODE_CAP)


cdef inline int key_id(const char* k, int n) noexcept nogil:
    if n == 6:
        if memcmp(k, b"method", 6) == 0:
            return KEY_METHOD
        if memcmp(k, b"params", 6) == 0:
            return KEY_PARAMS
        if memcmp(k, b"result", 6) == 0:
            return KEY_RESULT
    elif n == 2:
        if k[0] == b'i' and k[1] == b'd':
            return KEY_ID
    elif n == 5:
        if memcmp(k, b"error", 5) == 0:
            return KEY_ERROR
    elif n == 4:
        if memcmp(k, b"type", 4) == 0:
            return KEY_TYPE
    return KEY_OTHER


cdef inline int raw_word(const uchar* p, const uchar* end, const char* word, int n) noexcept nogil:
    """True if p starts with word + '"' (a string written without escapes): the common
    case, checked with one memcmp before the general string reader."""
    return end - p > n and p[n] == 34 and memcmp(p, word, n) == 0


cdef inline const uchar* after_colon(const uchar* p, const uchar* end) noexcept nogil:
    """p is just after an object key: skip ':' and the whitespace around it; return the
    start of the value, or NULL if there is no ':' or nothing after it."""
    p = skip_ws(p, end)
    if p >= end or p[0] != 58:
        return NULL
    p = skip_ws(p + 1, end)
    return p if p < end else NULL


cdef const uchar* scan_params(const uchar* p, const uchar* end, int* ptype,
                              int* status) noexcept nogil:
    """p is just after the '{' of params. Validate the object; *ptype is set from its
    first "type" member: 1 "heartbeat", 2 "test_request", 0 anything else."""
    cdef char buf[DECODE_CAP]
    cdef const char* txt
    cdef int n
    cdef bint seen_type = False
    p = skip_ws(p, end)
    if p < end and p[0] == 125:
        return p + 1
    while True:
        p = skip_ws(p, end)
        if p >= end or p[0] != 34:
            return NULL
        p += 1
        if raw_word(p, end, b"type", 4):
            txt = <const char*>p
            n = 4
            p += 5
        else:
            p = str_token(p, end, buf, &txt, &n)
            if p == NULL:
                return NULL
        p = after_colon(p, end)
        if p == NULL:
            return NULL
        if not seen_type and n == 4 and memcmp(txt, b"type", 4) == 0:
            seen_type = True
            if p[0] == 34:
                p += 1
                if raw_word(p, end, b"test_request", 12):
                    ptype[0] = 2
                    p += 13
                    n = 0
                elif raw_word(p, end, b"heartbeat", 9):
                    ptype[0] = 1
                    p += 10
                    n = 0
                else:
                    p = str_token(p, end, buf, &txt, &n)
                if p == NULL:
                    return NULL
                if n == 9 and memcmp(txt, b"heartbeat", 9) == 0:
                    ptype[0] = 1
                elif n == 12 and memcmp(txt, b"test_request", 12) == 0:
                    ptype[0] = 2
            else:
                p = skip_value(p, end, status, MAX_DEPTH, False)
        else:
            p = skip_value(p, end, status, MAX_DEPTH, False)
        if p == NULL:
            return NULL
        p = skip_ws(p, end)
        if p >= end:
            return NULL
        if p[0] == 44:
            p += 1
        elif p[0] == 125:
            return p + 1
        else:
            return NULL


cdef int scan_general(const uchar* p, const uchar* end, ClassifyResult* out) noexcept nogil:
    """The strict scanner for any layout. See the module docstring for the rules."""
    cdef char buf[DECODE_CAP]
    cdef const char* txt
    cdef int n, key, i
    cdef int status = ST_OK
    cdef bint seen_method = False, seen_params = False, seen_id = False
    cdef bint method_hb = False, id_engine = False, has_result = False, has_error = False
    cdef int ptype = 0
    cdef long long seq

    p = skip_ws(p, end)
    if p >= end or p[0] != 123:
        return K_OTHER      # not an object (or not JSON): never heartbeat traffic
    p = skip_ws(p + 1, end)
    if p < end and p[0] == 125:
        return K_OTHER      # {} (valid or not, OTHER)
    while True:
        p = skip_ws(p, end)
        if p >= end or p[0] != 34:
            return K_OTHER
        p += 1
        # The keys Deribit writes, without escapes: one memcmp each.
        if raw_word(p, end, b"method", 6):
            key = KEY_METHOD
            p += 7
        elif raw_word(p, end, b"params", 6):
            key = KEY_PARAMS
            p += 7
        elif raw_word(p, end, b"jsonrpc", 7):
            key = KEY_OTHER
            p += 8
        else:
            p = str_token(p, end, buf, &txt, &n)
            if p == NULL:
                return K_OTHER
            key = key_id(txt, n) if n >= 0 else KEY_OTHER
        p = skip_ws(p, end)
        if p >= end or p[0] != 58:
            return K_OTHER
        p = skip_ws(p + 1, end)
        if p >= end:
            return K_OTHER

        if key == KEY_METHOD and not seen_method:
            seen_method = True
            # A message with both an id and a method is never heartbeat traffic.
            if seen_id:
                return K_OTHER
            if p[0] != 34:
                return K_OTHER
            if raw_word(p + 1, end, b"heartbeat", 9):
                p += 11
            else:
                p = str_token(p + 1, end, buf, &txt, &n)
                if p == NULL or n != 9 or memcmp(txt, b"heartbeat", 9) != 0:
                    return K_OTHER
            method_hb = True
        elif key == KEY_ID and not seen_id:
            seen_id = True
            if seen_method or p[0] != 34:
                return K_OTHER
            p = str_token(p + 1, end, buf, &txt, &n)
            # A prefix test: the id may be long or carry non-ASCII after the prefix.
            i = n if n >= 0 else -1 - n
            if p == NULL or i < ENGINE_PREFIX_LEN or memcmp(txt, ENGINE_PREFIX, ENGINE_PREFIX_LEN) != 0:
                return K_OTHER
            id_engine = True
            # Sequence number: the digits after the prefix (drbfast.frames.engine_id).
            seq = 0
            if n < 0 or n == ENGINE_PREFIX_LEN or n > ENGINE_PREFIX_LEN + 18:
                seq = -1
            else:
                for i in range(ENGINE_PREFIX_LEN, n):
                    if txt[i] < b'0' or txt[i] > b'9':
                        seq = -1
                        break
                    seq = seq * 10 + (txt[i] - 48)
            out.seq = seq
        elif key == KEY_PARAMS and not seen_params:
            seen_params = True
            if p[0] == 123:
                p = scan_params(p + 1, end, &ptype, &status)
            else:
                p = skip_value(p, end, &status, MAX_DEPTH, False)
        else:
            if key == KEY_RESULT:
                has_result = True
            elif key == KEY_ERROR:
                has_error = True
            # (a duplicate method/id/params: the first occurrence already decided)
            p = skip_value(p, end, &status, MAX_DEPTH, False)
        if p == NULL:
            return K_UNKNOWN if status == ST_DEFER else K_OTHER
        p = skip_ws(p, end)
        if p >= end:
            return K_OTHER
        if p[0] == 44:
            p += 1
            continue
        if p[0] != 125:
            return K_OTHER
        p = skip_ws(p + 1, end)
        if p != end:
            return K_OTHER      # trailing bytes: invalid JSON
        break

    if status == ST_DEFER:
        return K_UNKNOWN        # a huge integer somewhere: let Python's rules decide
    if id_engine:
        if has_result or has_error:
            out.is_error = has_error
            return K_TEST_REPLY
        return K_OTHER
    if seen_id or not method_hb:
        return K_OTHER
    if ptype == 2:
        return K_TEST_REQUEST
    if ptype == 1:
        return K_HEARTBEAT
    return K_OTHER


# ---------------------------------------------------------------- lanes (OTHER only)
#
# The rule (drbfast.oracle.lane_reference). Deribit's two production layouts decide by
# their first bytes, whatever follows (the listener only queues a message; the
# consumer's parser is the one that rejects invalid JSON):
#   {"jsonrpc":"2.0","method":"subscription","params":{"channel":"<plain ASCII>"
#       -> the channel's lane (channel_lane), the channel a slice of the buffer;
#   {"jsonrpc":"2.0","id":<digit or ->  -> PRIORITY (a reply).
# Any other layout goes by a full parse (the oracle): a subscription with a string
# channel -> its lane; another method -> ORDERED; an id -> PRIORITY; else ORDERED.
# The fast matcher leaves those L_UNKNOWN and the listener asks the oracle.

cdef inline bint has_prefix(const char* c, Py_ssize_t n, const char* word, Py_ssize_t k) noexcept nogil:
    return n >= k and memcmp(c, word, k) == 0


cdef int channel_lane(const char* c, Py_ssize_t n) noexcept nogil:
    """The lane of a notification on channel c[0:n] (Deribit's channel names),
    dispatched on the first byte: one or two memcmp per channel."""
    if n < 5:
        return L_ORDERED
    cdef char first = c[0]
    if first == b'u':
        return L_PRIORITY if has_prefix(c, n, b"user.", 5) else L_ORDERED  # orders, trades, portfolio, changes...
    if first == b'b':
        return L_BOOK if has_prefix(c, n, b"book.", 5) else L_ORDERED
    # Latest-value channels: each message carries the whole current value, so only the
    # newest one matters. (incremental_ticker sends changed fields only: not one.
    # platform_state carries one price_index per message: not one either.)
    if first == b't':
        return L_CONFLATE if has_prefix(c, n, b"ticker.", 7) else L_ORDERED
    if first == b'q':
        return L_CONFLATE if has_prefix(c, n, b"quote.", 6) else L_ORDERED
    if first == b'm':
        return L_CONFLATE if has_prefix(c, n, b"markprice.", 10) else L_ORDERED
    if first == b'p':
        return L_CONFLATE if has_prefix(c, n, b"perpetual.", 10) else L_ORDERED
    if first == b'e':
        return L_CONFLATE if has_prefix(c, n, b"estimated_expiration_price.", 27) else L_ORDERED
    if first == b'd' and has_prefix(c, n, b"deribit_", 8):
        if (has_prefix(c + 8, n - 8, b"price_index.", 12) or has_prefix(c + 8, n - 8, b"price_ranking.", 14)
                or has_prefix(c + 8, n - 8, b"price_statistics.", 17)
                or has_prefix(c + 8, n - 8, b"volatility_index.", 17)):
            return L_CONFLATE
    return L_ORDERED


cdef inline void notification_lane(const uchar* base, const uchar* end, ClassifyResult* out) noexcept nogil:
    """The data starts with SUB_PREFIX: the channel name is the plain run after it."""
    cdef const uchar* c = base + SUB_PREFIX_LEN
    cdef const uchar* q = plain_run(c, end)
    if q >= end or q[0] != 34:
        return      # an escape or non-ASCII in the name, or truncated: the oracle decides
    out.chan_off = c - base
    out.chan_len = q - c
    out.lane = channel_lane(<const char*>c, q - c)


cdef int classify_msg(const char* data, Py_ssize_t size, ClassifyResult* out) noexcept nogil:
    cdef const uchar* p = <const uchar*>data
    cdef const uchar* end = p + size
    cdef const uchar* v
    cdef int i
    out.kind = K_OTHER
    out.is_error = 0
    out.seq = -1
    out.lane = L_UNKNOWN
    out.chan_off = 0
    out.chan_len = 0
    # 1. Production heartbeat frames, byte for byte.
    if size == TR_LEN:
        if memcmp(data, TR_PROD, TR_LEN) == 0 or memcmp(data, TR_DOCS, TR_LEN) == 0:
            out.kind = K_TEST_REQUEST
            return K_TEST_REQUEST
    elif size == HB_LEN:
        if memcmp(data, HB_PROD, HB_LEN) == 0 or memcmp(data, HB_DOCS, HB_LEN) == 0:
            out.kind = K_HEARTBEAT
            return K_HEARTBEAT
    # 2. Responses and notifications: {"jsonrpc":"2.0", then "method" or "id" first.
    if size > JSONRPC_PREFIX_LEN + 6 and memcmp(data, JSONRPC_PREFIX, JSONRPC_PREFIX_LEN) == 0:
        v = p + JSONRPC_PREFIX_LEN
        if v[0] == 34 and v[1] == b'i' and v[2] == b'd' and v[3] == 34 and v[4] == 58:
            # "id": with a number (every user request) -> OTHER. A string may be ours.
            if v[5] == 45 or (v[5] >= 48 and v[5] <= 57):
                out.lane = L_PRIORITY   # a reply to a (numeric-id) request
                return K_OTHER
        elif size > JSONRPC_PREFIX_LEN + 20 and memcmp(v, b'"method":"', 10) == 0:
            # Compare the method value with heartbeat" until the first difference; a
            # difference before any backslash means the method is not "heartbeat".
            v += 10
            for i in range(10):
                if v[i] == 92:
                    break
                if v[i] != (<const uchar*>b'heartbeat"')[i]:
                    if size > SUB_PREFIX_LEN and memcmp(data, SUB_PREFIX, SUB_PREFIX_LEN) == 0:
                        notification_lane(p, end, out)
                    return K_OTHER
    # 3. Anything else: the strict scanner.
    out.kind = scan_general(p, end, out)
    return out.kind


# ---------------------------------------------------------------- Python surface

cdef extern from *:
    """
    /* An empty asm the compiler cannot see through: the benchmark loop must classify
       the message every turn instead of hoisting the (pure) call out of the loop. */
    static inline const char* drbfast_launder(const char* p) {
        __asm__ volatile("" : "+r"(p));
        return p;
    }
    """
    const char* launder "drbfast_launder"(const char* p) noexcept nogil

from drbfast.kinds import Kind, Lane
from drbfast.oracle import classify_reference, lane_reference

cdef tuple _KINDS = (Kind.OTHER, Kind.HEARTBEAT, Kind.TEST_REQUEST, Kind.TEST_REPLY, Kind.UNKNOWN)
cdef tuple _LANES = (Lane.UNKNOWN, Lane.PRIORITY, Lane.ORDERED, Lane.CONFLATE, Lane.BOOK)


def classify_lane(payload: bytes):
    """``(kind, lane, channel)`` from the fast matcher: ``lane`` is ``Lane.UNKNOWN``
    unless ``kind`` is OTHER and the fast matcher decided it; ``channel`` is the
    channel slice (``str``) or None."""
    cdef ClassifyResult r
    classify_msg(<const char*>payload, len(payload), &r)
    channel = None
    if r.chan_len > 0 and r.lane != L_UNKNOWN:
        channel = payload[r.chan_off:r.chan_off + r.chan_len].decode("ascii")
    return _KINDS[r.kind], _LANES[r.lane], channel


def lane_exact(payload: bytes):
    """``(lane, channel)`` of a message the listener delivers: the fast matcher, then
    the oracle when it could not decide (``channel`` is "" without one)."""
    kind, lane, channel = classify_lane(payload)
    if lane == Lane.UNKNOWN:
        return lane_reference(payload)
    return lane, channel if channel is not None else ""


def classify(payload):
    """Sort one message with the fast matcher; may return ``Kind.UNKNOWN``."""
    cdef ClassifyResult r
    if type(payload) is bytes:  # the common case, without a memoryview
        classify_msg(<const char*><bytes>payload, len(<bytes>payload), &r)
        return _KINDS[r.kind]
    if payload is None:
        raise TypeError("classify() needs bytes or a bytes-like object, not None")
    return _classify_buffer(payload)


cdef object _classify_buffer(const unsigned char[::1] payload):
    cdef ClassifyResult r
    cdef Py_ssize_t n = payload.shape[0]
    cdef const char* ptr = EMPTY
    if n > 0:
        ptr = <const char*>&payload[0]
    classify_msg(ptr, n, &r)
    return _KINDS[r.kind]


def classify_exact(payload: bytes):
    """Sort one message as the listener does: fast matcher, then the oracle for UNKNOWN."""
    cdef ClassifyResult r
    classify_msg(<const char*>payload, len(payload), &r)
    if r.kind == K_UNKNOWN:
        return classify_reference(payload)
    return _KINDS[r.kind]


def classify_detail(payload: bytes):
    """``(kind, is_error, seq)``: what the listener learns about an engine reply."""
    cdef ClassifyResult r
    classify_msg(<const char*>payload, len(payload), &r)
    return _KINDS[r.kind], bool(r.is_error), r.seq


def bench_classify(payload: bytes, Py_ssize_t n):
    """Mean nanoseconds per classification of ``payload``, timed around a C loop of
    ``n`` calls (no Python call per iteration)."""
    cdef ClassifyResult r
    cdef const char* ptr = <const char*>payload
    cdef Py_ssize_t size = len(payload)
    cdef Py_ssize_t i
    cdef int64_t t0, t1
    cdef long long acc = 0
    if n <= 0:
        raise ValueError("n must be positive")
    with nogil:
        t0 = now_ns()
        for i in range(n):
            acc += classify_msg(launder(ptr), size, &r)
        t1 = now_ns()
    if acc < 0:
        raise AssertionError("unreachable")
    return (t1 - t0) / <double>n
