# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""The compiled order book: Deribit ``book.*`` notifications applied straight from bytes.

A message is read by a small strict scanner (no JSON decoder, no Python object per level)
in two phases, so the book never shows a half-applied frame:

1. Scan. The whole message is validated and every ``bids``/``asks`` entry parsed into a
   per-book scratch list (``ops``). Keys may come in any order (PROTOCOL.md 4.1: ``data``'s
   order differs between the docs and live frames, and ``prev_change_id`` may come last),
   with any whitespace, and numbers in every JSON form (``1054.0``, ``1e-05``, ``40``).
   Duplicate keys: the first one counts (as :func:`drbfast.oracle.parse_first_wins`).
2. Apply. A snapshot is built in a spare array and swapped in whole. A change is applied
   level by level with an undo log; a ``change``/``delete`` of a missing level, or a
   crossed book at the end, rolls the frame back.

Anything the scanner does not read is PARSE_ERROR, never a guess: backslash escapes in
keys or in the strings it compares, numbers longer than 63 characters, nesting deeper
than 256. The contract, checked against :class:`drbfast.book_reference.ReferenceBook` by
the property tests: on every input the status and the resulting book equal the
reference's, except that (a) the scanner may say PARSE_ERROR where the reference applies
the message, and (b) once the first ``method``/``channel`` member already says the
message is not this book's, it answers NOT_BOOK/OTHER_CHANNEL without validating the
rest (the book is untouched either way).

Layout (benchmarked, bench/BOOK_RESULTS.md): per side one array of (key, amount) sorted
ascending with the best level last; asks store key = -price so both sides share the code.
A level is found by galloping from the top, then a binary search, so the usual update
near the top of the book costs a few comparisons and a memmove of the levels above it.
"""

from cpython.buffer cimport PyBUF_SIMPLE, PyBuffer_Release, PyObject_GetBuffer
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_CheckExact, PyBytes_GET_SIZE
from cpython.exc cimport PyErr_Clear, PyErr_Occurred
from cpython.ref cimport PyObject
from libc.math cimport isfinite
from libc.stdint cimport int64_t, uint64_t
from libc.stdlib cimport free, qsort, realloc
from libc.string cimport memcmp, memcpy, memmove

from drbfast._book cimport (BOOK_APPLIED, BOOK_CROSSED, BOOK_GAP, BOOK_NO_MEMORY,
                            BOOK_NOT_BOOK, BOOK_OTHER_CHANNEL, BOOK_PARSE_ERROR,
                            BOOK_RESYNCING, BOOK_SNAPSHOT, BOOK_UNKNOWN_LEVEL, Level, Op,
                            OpList, Side, Undo)

import importlib

from drbfast.book import BookSnapshot, BookStatus, parse_book_channel
from drbfast.frames import NOTIFICATION_PREFIX

from drbfast._scan cimport (ST_OK, Decimal, plain_run, scan_number, skip_string,
                            skip_value as scan_skip_value, skip_ws as ws, uchar)

cdef extern from "Python.h":
    # Locale-independent and correctly rounded (CPython's dtoa). Without an overflow
    # exception it returns +-HUGE_VAL on overflow; it sets ValueError only if nothing parses.
    double PyOS_string_to_double(const char* s, char** endptr, PyObject* overflow_exception)

from drbfast._clock cimport now_ns


# Statuses as BookStatus members, indexed by the C value (a tuple index, not an enum call).
cdef tuple STATUS = tuple(BookStatus(i) for i in range(len(BookStatus)))

cdef enum:
    ACT_NEW = 0
    ACT_CHANGE = 1
    ACT_DELETE = 2

cdef enum:
    MAX_DEPTH = 256      # a container at nesting level 256 of a skipped value: PARSE_ERROR
    MAX_NUM_CHARS = 63   # longer numbers: PARSE_ERROR (no real price or amount is that long)
    MAX_ID_DIGITS = 18   # change_id / timestamp: |x| < 10**18 fits int64

# Exact powers of ten: 10**22 is the largest power of ten a double holds exactly.
cdef double POW10[23]
cdef int _i
_p10 = (1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14,
        1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22)
for _i in range(23):
    POW10[_i] = _p10[_i]

# ---------------------------------------------------------------------------------------
# Scanner primitives (the shared ones are in _scan.pxd). Each takes the position and the
# end, and returns the position after what it read, or NULL when the bytes are not what
# JSON (or this scanner) accepts.

cdef const uchar* read_plain(const uchar* p, const uchar* end, Py_ssize_t* length) noexcept nogil:
    """A string (opening quote at p[-1]) to compare byte for byte. length = its raw
    length when it is plain printable ASCII; -1 when it is valid but holds non-ASCII
    (it then equals none of our ASCII names); NULL if it has an escape (this scanner does
    not decode them) or is invalid."""
    cdef const uchar* start = p
    p = plain_run(p, end)
    if p < end and p[0] == 34:
        length[0] = p - start
        return p + 1
    if p < end and p[0] == 92:
        return NULL
    p = skip_string(p, end)
    if p == NULL:
        return NULL
    # an escape after the non-ASCII part is still an escape
    cdef const uchar* q = start
    while q < p - 1:
        if q[0] == 92:
            return NULL
        q += 1
    length[0] = -1
    return p


cdef inline const uchar* next_item(const uchar* p, const uchar* end, uchar close, bint* more) noexcept nogil:
    """After a member or element (p may be NULL: then NULL): a ',' (more = True, returns
    the next item's position) or the closing bracket (more = False, returns the byte
    after it); NULL for anything else."""
    if p == NULL:
        return NULL
    p = ws(p, end)
    if p >= end:
        return NULL
    if p[0] == 44:                                   # ','
        more[0] = True
        return ws(p + 1, end)
    if p[0] == close:
        more[0] = False
        return p + 1
    return NULL


cdef inline const uchar* separator(const uchar* p, const uchar* end, uchar c) noexcept nogil:
    """The ':' or ',' c between two parts of a member or level, with the whitespace
    around it (p may be NULL: then NULL)."""
    if p == NULL:
        return NULL
    p = ws(p, end)
    if p >= end or p[0] != c:
        return NULL
    return ws(p + 1, end)


cdef inline const uchar* skip_value(const uchar* p, const uchar* end) noexcept nogil:
    """Validate any JSON value starting at p (p < end, after whitespace). The book's rule
    for what it does not read (the module docstring): a container at nesting level
    MAX_DEPTH of the value (the value itself is level 1), empty or not, or an integer
    longer than Python accepts, is PARSE_ERROR (NULL), where the classifier defers."""
    cdef int status = ST_OK
    p = scan_skip_value(p, end, &status, MAX_DEPTH - 1, True)
    return p if status == ST_OK else NULL


cdef const uchar* parse_double(const uchar* p, const uchar* end, double* out) noexcept:
    """A JSON number as the double Python's float() gives for it (correctly rounded).

    Fast path (Clinger): when the decimal significand m fits in 53 bits and the decimal
    exponent e is within +-22, m and 10**|e| are both exact doubles, so m * 10**e (or
    m / 10**-e) is one correctly rounded IEEE operation. Every price and amount Deribit
    prints (86775.5, 0.0005, 1e-05, 308897.0) takes it. Otherwise CPython's strtod.
    """
    cdef const uchar* start = p
    cdef Decimal d
    cdef int status = ST_OK
    cdef double v
    cdef char buf[MAX_NUM_CHARS + 1]
    cdef char* endp
    cdef Py_ssize_t n
    p = scan_number(p, end, &status, &d)
    if p == NULL or status != ST_OK:
        return NULL          # (a deferred int has over 4300 digits: past MAX_NUM_CHARS too)
    if not d.slow and d.m <= (<uint64_t>1 << 53):
        if d.e10 == 0:
            v = <double>d.m
        elif 0 < d.e10 <= 22:
            v = <double>d.m * POW10[d.e10]
        elif -22 <= d.e10 < 0:
            v = <double>d.m / POW10[-d.e10]
        elif d.m == 0:
            v = 0.0
        else:
            d.slow = True
        if not d.slow:
            out[0] = -v if d.neg else v
            return p
    n = p - start
    if n > MAX_NUM_CHARS:
        return NULL
    memcpy(buf, start, n)
    buf[n] = 0
    v = PyOS_string_to_double(buf, &endp, NULL)
    if PyErr_Occurred() != NULL:
        PyErr_Clear()
        return NULL
    if endp != buf + n:
        return NULL
    out[0] = v
    return p


cdef const uchar* parse_int64(const uchar* p, const uchar* end, int64_t* out) noexcept nogil:
    """A JSON integer (no fraction, no exponent) of at most 18 digits."""
    cdef Decimal d
    cdef int status = ST_OK
    p = scan_number(p, end, &status, &d)
    if p == NULL or d.is_float or d.int_digits > MAX_ID_DIGITS:
        return NULL          # a float where an integer id belongs, or too long for int64
    out[0] = -<int64_t>d.m if d.neg else <int64_t>d.m
    return p


# ---------------------------------------------------------------------------------------
# Growable arrays.

cdef int reserve_side(Side* s, Py_ssize_t need) noexcept nogil:
    cdef Py_ssize_t cap
    cdef Level* lv
    if need <= s.cap:
        return 0
    cap = s.cap * 2 if s.cap else 64
    while cap < need:
        cap *= 2
    lv = <Level*>realloc(s.lv, cap * sizeof(Level))
    if lv == NULL:
        return -1
    s.lv = lv
    s.cap = cap
    return 0


cdef int push_op(OpList* ol, double key, double amount, int action) noexcept nogil:
    cdef Py_ssize_t cap
    cdef Op* op
    if ol.n == ol.cap:
        cap = ol.cap * 2 if ol.cap else 64
        op = <Op*>realloc(ol.op, cap * sizeof(Op))
        if op == NULL:
            return -1
        ol.op = op
        ol.cap = cap
    op = &ol.op[ol.n]
    op.key = key
    op.amount = amount
    op.action = action
    op.idx = <int>ol.n
    ol.n += 1
    return 0


# ---------------------------------------------------------------------------------------
# Price-level search and edits on one side (ascending keys, best last).

cdef inline Py_ssize_t lower_bound(const Side* s, double key) noexcept nogil:
    """First index whose key >= key (s.n if none). Gallops down from the top of the book
    (the end of the array), where nearly every update lands, then bisects."""
    cdef const Level* lv = s.lv
    cdef Py_ssize_t hi = s.n        # every index >= hi has key >= `key`
    cdef Py_ssize_t lo = 0          # every index < lo has key < `key`
    cdef Py_ssize_t step = 1
    cdef Py_ssize_t j, mid
    while True:
        j = hi - step
        if j < 0:
            break
        if lv[j].key < key:
            lo = j + 1
            break
        hi = j
        step <<= 1
    while lo < hi:
        mid = (lo + hi) >> 1
        if lv[mid].key < key:
            lo = mid + 1
        else:
            hi = mid
    return lo


cdef inline void insert_at(Side* s, Py_ssize_t i, double key, double amount) noexcept nogil:
    # capacity was reserved before the frame was applied
    if i < s.n:
        memmove(&s.lv[i + 1], &s.lv[i], (s.n - i) * sizeof(Level))
    s.lv[i].key = key
    s.lv[i].amount = amount
    s.n += 1


cdef inline void remove_at(Side* s, Py_ssize_t i) noexcept nogil:
    s.n -= 1
    if i < s.n:
        memmove(&s.lv[i], &s.lv[i + 1], (s.n - i) * sizeof(Level))


cdef int cmp_op(const void* a, const void* b) noexcept nogil:
    # by key, then by position in the message (qsort is not stable)
    cdef const Op* x = <const Op*>a
    cdef const Op* y = <const Op*>b
    if x.key < y.key:
        return -1
    if x.key > y.key:
        return 1
    return x.idx - y.idx


# ---------------------------------------------------------------------------------------
# The scanner proper.

ctypedef struct Meta:
    int type                # 0 absent, 1 snapshot, 2 change, 3 another string
    bint has_change_id
    bint has_prev
    int64_t change_id
    int64_t prev_change_id
    int64_t timestamp


cdef enum:
    # results of scan_message besides the BOOK_* statuses
    SCAN_OK = -1


cdef inline bint key_is(const uchar* k, Py_ssize_t n, const char* name, Py_ssize_t m) noexcept nogil:
    return n == m and memcmp(k, name, m) == 0


cdef inline const uchar* member_key(const uchar* p, const uchar* end,
                                    const uchar** k, Py_ssize_t* kn) noexcept nogil:
    """At an object member: read its key (to compare raw, see read_plain), the ':' and the
    whitespace after it. Returns the position of the value, or NULL."""
    if p >= end or p[0] != 34:
        return NULL
    k[0] = p + 1
    p = separator(read_plain(k[0], end, kn), end, 58)   # ':'
    return p if p != NULL and p < end else NULL


cdef inline const uchar* string_value(const uchar* p, const uchar* end,
                                      const uchar** v, Py_ssize_t* vn) noexcept nogil:
    # a string value to compare raw (see read_plain); NULL if p is not at a '"'
    if p[0] != 34:
        return NULL
    v[0] = p + 1
    return read_plain(v[0], end, vn)


cdef const uchar* parse_levels(OrderBook b, const uchar* p, const uchar* end, int side) noexcept:
    """``[[action, price, amount], ...]`` (or ``[[price, amount], ...]`` on a grouped
    channel) into b.ops[side]; p is at the opening '['."""
    cdef OpList* ol = &b.ops[side]
    cdef double price, amount
    cdef int action = ACT_NEW
    cdef bint triples = not b.grouped
    cdef bint more = True
    p = ws(p + 1, end)
    if p < end and p[0] == 93:                       # ']': no levels
        return p + 1
    while more:
        if p >= end or p[0] != 91:                   # '['
            return NULL
        p = ws(p + 1, end)
        if triples:
            # the action, compared raw: "new", "change", "delete" (PROTOCOL.md 4.2)
            if end - p >= 5 and memcmp(p, b'"new"', 5) == 0:
                action = ACT_NEW
                p += 5
            elif end - p >= 8 and memcmp(p, b'"change"', 8) == 0:
                action = ACT_CHANGE
                p += 8
            elif end - p >= 8 and memcmp(p, b'"delete"', 8) == 0:
                action = ACT_DELETE
                p += 8
            else:
                return NULL
            p = separator(p, end, 44)
            if p == NULL:
                return NULL
        p = separator(parse_double(p, end, &price), end, 44)
        if p == NULL:
            return NULL
        p = parse_double(p, end, &amount)
        if p == NULL:
            return NULL
        p = ws(p, end)
        if p >= end or p[0] != 93:                   # exactly two or three members
            return NULL
        if not isfinite(price) or not isfinite(amount) or amount < 0.0:
            return NULL
        if push_op(ol, price if side == 0 else -price, amount, action) < 0:
            b.oom = True
            return NULL
        p = next_item(p + 1, end, 93, &more)
        if p == NULL:
            return NULL
    return p


cdef const uchar* parse_data(OrderBook b, const uchar* p, const uchar* end, Meta* meta) noexcept:
    """The ``data`` object (p at its '{'). Fills meta and b.ops."""
    cdef const uchar* k
    cdef const uchar* v
    cdef Py_ssize_t kn, vn
    cdef bint seen_type = False, seen_ts = False, seen_bids = False, seen_asks = False
    cdef bint more = True
    meta.type = 0
    meta.has_change_id = False
    meta.has_prev = False
    meta.timestamp = 0
    b.ops[0].n = 0
    b.ops[1].n = 0
    p = ws(p + 1, end)
    if p < end and p[0] == 125:                      # '}'
        return p + 1
    while more:
        p = member_key(p, end, &k, &kn)
        if p == NULL:
            return NULL
        if key_is(k, kn, b"bids", 4) and not seen_bids:
            seen_bids = True
            p = parse_levels(b, p, end, 0) if p[0] == 91 else NULL
        elif key_is(k, kn, b"asks", 4) and not seen_asks:
            seen_asks = True
            p = parse_levels(b, p, end, 1) if p[0] == 91 else NULL
        elif key_is(k, kn, b"change_id", 9) and not meta.has_change_id:
            meta.has_change_id = True
            p = parse_int64(p, end, &meta.change_id)
        elif key_is(k, kn, b"prev_change_id", 14) and not meta.has_prev and not b.grouped:
            meta.has_prev = True
            p = parse_int64(p, end, &meta.prev_change_id)
        elif key_is(k, kn, b"timestamp", 9) and not seen_ts:
            seen_ts = True
            p = parse_int64(p, end, &meta.timestamp)
        elif key_is(k, kn, b"type", 4) and not seen_type and not b.grouped:
            seen_type = True
            p = string_value(p, end, &v, &vn)
            if p == NULL:
                return NULL
            if key_is(v, vn, b"snapshot", 8):
                meta.type = 1
            elif key_is(v, vn, b"change", 6):
                meta.type = 2
            else:
                meta.type = 3
        else:
            # instrument_name, later duplicates, and anything Deribit may add
            p = skip_value(p, end)
        p = next_item(p, end, 125, &more)
        if p == NULL:
            return NULL
    return p


cdef int scan_params(OrderBook b, const uchar** pp, const uchar* end, Meta* meta,
                     bint* seen_channel, bint* data_ok) noexcept:
    """The ``params`` object (*pp at its '{'); moves *pp past it. SCAN_OK or a status."""
    cdef const uchar* p = ws(pp[0] + 1, end)
    cdef const uchar* k
    cdef const uchar* v
    cdef const uchar* after
    cdef Py_ssize_t kn, vn
    cdef bint seen_data = False, more = True
    if p < end and p[0] == 125:
        pp[0] = p + 1
        return SCAN_OK
    while more:
        p = member_key(p, end, &k, &kn)
        if p == NULL:
            return BOOK_PARSE_ERROR
        if key_is(k, kn, b"channel", 7) and not seen_channel[0]:
            seen_channel[0] = True
            if p[0] != 34:
                return BOOK_NOT_BOOK
            p = string_value(p, end, &v, &vn)
            if p == NULL:
                return BOOK_PARSE_ERROR
            # raw bytes equal the decoded name: read_plain refused escapes
            if vn < 5 or memcmp(v, b"book.", 5) != 0:
                return BOOK_NOT_BOOK
            if not book_channel_is(b, <const char*>v, vn):
                return BOOK_OTHER_CHANNEL
        elif key_is(k, kn, b"data", 4) and not seen_data and p[0] == 123:
            seen_data = True
            # Parsed as this book's form even before the channel is known (data first
            # is legal JSON); if it does not parse, skip it to find out whose it is.
            after = parse_data(b, p, end, meta)
            if after != NULL:
                data_ok[0] = True
                p = after
            else:
                p = skip_value(p, end)
        else:
            seen_data = seen_data or key_is(k, kn, b"data", 4)
            p = skip_value(p, end)
        p = next_item(p, end, 125, &more)
        if p == NULL:
            return BOOK_PARSE_ERROR
    pp[0] = p
    return SCAN_OK


# The envelope of drbfast.frames.NOTIFICATION_PREFIX up to params' '{' (exclusive):
# the book reads params itself, so a live frame with data before channel still takes
# the fast start. Held in a cdef global, which Python code cannot rebind under the pointer.
cdef bytes _NOTIF_PREFIX = NOTIFICATION_PREFIX[:NOTIFICATION_PREFIX.rindex(b"{")]
cdef const char* NOTIF_PREFIX = _NOTIF_PREFIX
cdef Py_ssize_t NOTIF_PREFIX_LEN = len(_NOTIF_PREFIX)


cdef int scan_message(OrderBook b, const uchar* p, const uchar* end, Meta* meta) noexcept:
    """Validate the notification and parse its data into b.ops/meta. SCAN_OK, or the
    BOOK_* status the message gets without being applied."""
    cdef const uchar* k
    cdef const uchar* v
    cdef Py_ssize_t kn, vn
    cdef bint seen_method = False, method_ok = False, seen_params = False
    cdef bint seen_channel = False, data_ok = False, more = True
    cdef int st
    b.oom = False
    p = ws(p, end)
    if end - p >= NOTIF_PREFIX_LEN and memcmp(p, NOTIF_PREFIX, NOTIF_PREFIX_LEN) == 0:
        # Every live notification starts with these exact bytes (PROTOCOL.md 4.1: the
        # envelope keys come in jsonrpc, method, params order): three members at once,
        # then params is read from its '{'.
        seen_method = method_ok = seen_params = True
        p = ws(p + NOTIF_PREFIX_LEN, end)
        if p >= end:
            return BOOK_PARSE_ERROR
        if p[0] != 123:
            return BOOK_NOT_BOOK         # params is not an object
        st = scan_params(b, &p, end, meta, &seen_channel, &data_ok)
        if st != SCAN_OK:
            return BOOK_NO_MEMORY if b.oom else st
        p = next_item(p, end, 125, &more)
        if p == NULL:
            return BOOK_PARSE_ERROR
    elif p < end and p[0] != 123:
        # valid JSON but not an object is simply not a notification
        p = skip_value(p, end)
        return BOOK_NOT_BOOK if p != NULL and ws(p, end) == end else BOOK_PARSE_ERROR
    elif p >= end:
        return BOOK_PARSE_ERROR
    else:
        p = ws(p + 1, end)
        if p < end and p[0] == 125:
            more = False
            p += 1
    while more:
        p = member_key(p, end, &k, &kn)
        if p == NULL:
            return BOOK_PARSE_ERROR
        if key_is(k, kn, b"method", 6) and not seen_method:
            # PROTOCOL.md 4.1: notifications are "method":"subscription". Any other
            # method settles it, whatever follows (first key wins).
            seen_method = True
            if p[0] != 34:
                return BOOK_NOT_BOOK
            p = string_value(p, end, &v, &vn)
            if p == NULL:
                return BOOK_PARSE_ERROR
            if not key_is(v, vn, b"subscription", 12):
                return BOOK_NOT_BOOK
            method_ok = True
        elif key_is(k, kn, b"params", 6) and not seen_params:
            seen_params = True
            if p[0] != 123:
                return BOOK_NOT_BOOK
            st = scan_params(b, &p, end, meta, &seen_channel, &data_ok)
            if st != SCAN_OK:
                return BOOK_NO_MEMORY if b.oom else st
        else:
            p = skip_value(p, end)
        p = next_item(p, end, 125, &more)
        if p == NULL:
            return BOOK_PARSE_ERROR
    if ws(p, end) != end:
        return BOOK_PARSE_ERROR          # trailing bytes after the message
    if not method_ok or not seen_params or not seen_channel:
        return BOOK_NOT_BOOK
    if not data_ok:
        return BOOK_NO_MEMORY if b.oom else BOOK_PARSE_ERROR  # data missing or unreadable
    return SCAN_OK


# ---------------------------------------------------------------------------------------
# Apply.

cdef inline int mark_resync(OrderBook b, int status) noexcept:
    if b.synced:
        b.synced = False
        b.resyncs += 1
        b.version += 1
    if status == BOOK_GAP:
        b.gaps += 1
    elif status == BOOK_UNKNOWN_LEVEL:
        b.unknown_levels += 1
    elif status == BOOK_CROSSED:
        b.crossed += 1
    elif status == BOOK_PARSE_ERROR:
        b.parse_errors += 1
    elif status == BOOK_NO_MEMORY:
        b.no_memory += 1
    return status


cdef inline bint is_crossed(const Side* bids, const Side* asks) noexcept nogil:
    # best bid >= best ask; an ask's key is -price
    return bids.n > 0 and asks.n > 0 and bids.lv[bids.n - 1].key >= -asks.lv[asks.n - 1].key


cdef int build_side(OrderBook b, int side, bint need_new) noexcept:
    """b.ops[side] (best first) into b.spare[side] (ascending, best last). 0, or a status."""
    cdef OpList* ol = &b.ops[side]
    cdef Side* s = &b.spare[side]
    cdef Py_ssize_t k = ol.n
    cdef Py_ssize_t i, j
    cdef bint normal = True
    cdef Op* op
    if reserve_side(s, k) < 0:
        return BOOK_NO_MEMORY
    # Deribit sends each side best first (PROTOCOL.md 4.3): keys descending, so reversing
    # gives the ascending array. Out of order, repeated or zero levels take the slow way.
    j = 0
    for i in range(k - 1, -1, -1):
        op = &ol.op[i]
        if need_new and op.action != ACT_NEW:
            return BOOK_PARSE_ERROR      # a snapshot lists levels as "new" only
        if op.amount == 0.0 or (j > 0 and op.key <= s.lv[j - 1].key):
            normal = False
        s.lv[j].key = op.key
        s.lv[j].amount = op.amount
        j += 1
    s.n = k
    if normal:
        return 0
    # As if each level were applied in message order to an empty side: the last entry
    # for a price wins, and a zero amount leaves no level.
    qsort(ol.op, k, sizeof(Op), cmp_op)
    j = 0
    for i in range(k):
        op = &ol.op[i]
        if i + 1 < k and ol.op[i + 1].key == op.key:
            continue                     # a later entry for the same price follows
        if op.amount == 0.0:
            continue
        s.lv[j].key = op.key
        s.lv[j].amount = op.amount
        j += 1
    s.n = j
    return 0


cdef int apply_snapshot(OrderBook b, Meta* meta, int64_t rx_ns) noexcept:
    cdef int st
    cdef Side tmp
    st = build_side(b, 0, not b.grouped)
    if st == 0:
        st = build_side(b, 1, not b.grouped)
    if st != 0:
        return mark_resync(b, st)
    if is_crossed(&b.spare[0], &b.spare[1]):
        return mark_resync(b, BOOK_CROSSED)
    # commit: swap the spare arrays in
    tmp = b.side[0]; b.side[0] = b.spare[0]; b.spare[0] = tmp
    tmp = b.side[1]; b.side[1] = b.spare[1]; b.spare[1] = tmp
    b.synced = True
    b._change_id = meta.change_id
    b._timestamp = meta.timestamp
    b.rx_ns = rx_ns
    b.snapshots += 1
    b.levels += b.ops[0].n + b.ops[1].n
    b.version += 1
    return BOOK_SNAPSHOT


cdef void rollback(OrderBook b, Py_ssize_t nundo) noexcept nogil:
    """Undo the first nundo edits of the frame, last first: the book is as before it."""
    cdef Py_ssize_t u, i
    cdef Undo* ud
    cdef Side* s
    for u in range(nundo - 1, -1, -1):
        ud = &b.undo[u]
        s = &b.side[ud.side]
        i = lower_bound(s, ud.key)
        if ud.had:
            if i < s.n and s.lv[i].key == ud.key:
                s.lv[i].amount = ud.amount
            else:
                insert_at(s, i, ud.key, ud.amount)
        else:
            remove_at(s, i)              # it was inserted by this frame


cdef int apply_change(OrderBook b, Meta* meta, int64_t rx_ns) noexcept:
    cdef Py_ssize_t nu = 0
    cdef Py_ssize_t i, j, total
    cdef int sd
    cdef Side* s
    cdef Op* op
    cdef Undo* ud
    cdef bint found
    if not b.synced:
        b.ignored += 1
        return BOOK_RESYNCING
    # PROTOCOL.md 4.2: prev_change_id equals the previous frame's change_id unless a
    # frame was missed (change_id itself jumps: the counter is shared by instruments).
    if meta.prev_change_id != b._change_id:
        return mark_resync(b, BOOK_GAP)
    # Reserve every array the frame could grow, so nothing below can fail half way.
    total = b.ops[0].n + b.ops[1].n
    if total > b.undo_cap:
        ud = <Undo*>realloc(b.undo, total * sizeof(Undo))
        if ud == NULL:
            return mark_resync(b, BOOK_NO_MEMORY)
        b.undo = ud
        b.undo_cap = total
    for sd in range(2):
        if reserve_side(&b.side[sd], b.side[sd].n + b.ops[sd].n) < 0:
            return mark_resync(b, BOOK_NO_MEMORY)
    for sd in range(2):
        s = &b.side[sd]
        for i in range(b.ops[sd].n):
            op = &b.ops[sd].op[i]
            j = lower_bound(s, op.key)
            found = j < s.n and s.lv[j].key == op.key
            if not found and op.action != ACT_NEW:
                rollback(b, nu)
                return mark_resync(b, BOOK_UNKNOWN_LEVEL)
            if not found and op.amount == 0.0:
                continue                 # "new" with nothing: no level to add
            ud = &b.undo[nu]
            nu += 1
            ud.key = op.key
            ud.side = sd
            if found:
                ud.had = 1
                ud.amount = s.lv[j].amount
                if op.action == ACT_DELETE or op.amount == 0.0:
                    remove_at(s, j)
                else:
                    s.lv[j].amount = op.amount
            else:
                ud.had = 0
                insert_at(s, j, op.key, op.amount)
    if is_crossed(&b.side[0], &b.side[1]):
        rollback(b, nu)
        return mark_resync(b, BOOK_CROSSED)
    b._change_id = meta.change_id
    b._timestamp = meta.timestamp
    b.rx_ns = rx_ns
    b.updates += 1
    b.levels += total
    b.version += 1
    return BOOK_APPLIED


cdef int book_apply(OrderBook b, const char* data, Py_ssize_t size, int64_t rx_ns) noexcept:
    cdef Meta meta
    cdef int st = scan_message(b, <const uchar*>data, <const uchar*>data + size, &meta)
    if st != SCAN_OK:
        if st == BOOK_NOT_BOOK or st == BOOK_OTHER_CHANNEL:
            b.other += 1
            return st
        return mark_resync(b, st)
    if not meta.has_change_id:
        return mark_resync(b, BOOK_PARSE_ERROR)
    if rx_ns == 0:
        rx_ns = now_ns()
    if b.grouped:
        # book.{instrument}.{group}.{depth}.{interval}: every frame is the full window
        return apply_snapshot(b, &meta, rx_ns)
    if meta.type == 1:
        return apply_snapshot(b, &meta, rx_ns)
    if meta.type == 2 and meta.has_prev:
        return apply_change(b, &meta, rx_ns)
    return mark_resync(b, BOOK_PARSE_ERROR)  # no/unknown type, or a change without prev


cdef bint book_channel_is(OrderBook b, const char* channel, Py_ssize_t size) noexcept:
    return size == PyBytes_GET_SIZE(b._chan) and memcmp(channel, PyBytes_AS_STRING(b._chan), size) == 0


# ---------------------------------------------------------------------------------------
# Python surface.

cdef list side_list(const Side* s, double sign, object n):
    cdef Py_ssize_t count = s.n
    cdef Py_ssize_t i
    cdef const Level* lv
    if n is not None:
        if n < 0:
            raise ValueError("n must be >= 0")
        if n < count:
            count = n
    out = [None] * count
    for i in range(count):
        lv = &s.lv[s.n - 1 - i]
        out[i] = (sign * lv.key, lv.amount)
    return out


cdef object load_numpy():
    # NumPy is optional: imported on first use only, never at module import
    try:
        return importlib.import_module("numpy")
    except ImportError as exc:
        raise ImportError("OrderBook.to_numpy() needs NumPy (pip install numpy); "
                          "bids()/asks() give the same levels as lists") from exc


cdef object side_numpy(const Side* s, double sign, object n):
    cdef Py_ssize_t count = s.n
    cdef Py_ssize_t i
    cdef double[:, ::1] view
    numpy = load_numpy()
    if n is not None:
        if n < 0:
            raise ValueError("n must be >= 0")
        if n < count:
            count = n
    arr = numpy.empty((count, 2), dtype=numpy.float64)
    view = arr
    for i in range(count):
        view[i, 0] = sign * s.lv[s.n - 1 - i].key
        view[i, 1] = s.lv[s.n - 1 - i].amount
    return arr


cdef class OrderBook:
    """A local Deribit order book for one ``book.*`` channel, applied in compiled code.

    ``OrderBook("book.BTC-PERPETUAL.100ms")`` (snapshot, then change frames checked by
    ``prev_change_id``) or ``OrderBook("book.BTC-PERPETUAL.none.20.100ms")`` (grouped: a
    full window every frame). Feed it every message of the channel with :meth:`apply`.
    A new book is not synced until its first snapshot.
    """

    def __cinit__(self, str channel not None):
        self.instrument, self.grouped = parse_book_channel(channel)
        raw = channel.encode("utf-8")
        for c in raw:
            if c < 0x20 or c >= 0x80 or c == 34 or c == 92:
                raise ValueError(f"channel must be printable ASCII without quotes or backslashes: {channel!r}")
        self.channel = channel
        self._chan = raw
        self.top_cache = [None, None]

    def __dealloc__(self):
        cdef int i
        for i in range(2):
            free(self.side[i].lv)
            free(self.spare[i].lv)
            free(self.ops[i].op)
        free(self.undo)

    def apply(self, payload, int64_t rx_ns=0):
        """Apply one complete notification (``bytes``-like, the whole WebSocket text
        message). ``rx_ns``: its receive time (CLOCK_MONOTONIC ns), 0 for now. Returns a
        :class:`~drbfast.book.BookStatus`; never raises for bad input."""
        cdef Py_buffer buf
        cdef int st
        if PyBytes_CheckExact(payload):
            st = book_apply(self, PyBytes_AS_STRING(payload), PyBytes_GET_SIZE(payload), rx_ns)
        else:
            PyObject_GetBuffer(payload, &buf, PyBUF_SIMPLE)
            try:
                st = book_apply(self, <const char*>buf.buf, buf.len, rx_ns)
            finally:
                PyBuffer_Release(&buf)
        return STATUS[st]

    def reset(self):
        """Force a resync: the book keeps its last state but is no longer synced; change
        frames are ignored until the next snapshot."""
        if self.synced:
            self.synced = False
            self.resyncs += 1
            self.version += 1

    @property
    def is_synced(self):
        """True between a good snapshot and the next gap/unknown level/crossed/unreadable frame."""
        return self.synced

    @property
    def change_id(self):
        """``change_id`` of the last frame applied (0 before the first snapshot)."""
        return self._change_id

    @property
    def timestamp(self):
        """Exchange ``timestamp`` (ms) of the last frame applied (0 if it had none)."""
        return self._timestamp

    @property
    def best_bid(self):
        """``(price, amount)`` of the best bid, or None."""
        return self.best_level(0)

    @property
    def best_ask(self):
        """``(price, amount)`` of the best ask, or None."""
        return self.best_level(1)

    cdef object best_level(self, int sd):
        # The tuple is kept while the top level is the same (a poll between two updates
        # then costs two comparisons, not a tuple and two floats).
        cdef Side* s = &self.side[sd]
        cdef Level* top
        if s.n == 0:
            return None
        top = &s.lv[s.n - 1]
        if self.top_cache[sd] is None or top.key != self.top_key[sd] or top.amount != self.top_amount[sd]:
            self.top_key[sd] = top.key
            self.top_amount[sd] = top.amount
            self.top_cache[sd] = (top.key if sd == 0 else -top.key, top.amount)
        return self.top_cache[sd]

    @property
    def best_bid_price(self):
        """Best bid price, NaN if the side is empty (no tuple built)."""
        cdef Side* s = &self.side[0]
        return s.lv[s.n - 1].key if s.n else float("nan")

    @property
    def best_ask_price(self):
        """Best ask price, NaN if the side is empty (no tuple built)."""
        cdef Side* s = &self.side[1]
        return -s.lv[s.n - 1].key if s.n else float("nan")

    @property
    def spread(self):
        """Best ask - best bid, or None if a side is empty."""
        if self.side[0].n == 0 or self.side[1].n == 0:
            return None
        return -self.side[1].lv[self.side[1].n - 1].key - self.side[0].lv[self.side[0].n - 1].key

    @property
    def mid(self):
        """(best bid + best ask) / 2, or None if a side is empty."""
        if self.side[0].n == 0 or self.side[1].n == 0:
            return None
        return (self.side[0].lv[self.side[0].n - 1].key - self.side[1].lv[self.side[1].n - 1].key) / 2.0

    @property
    def bid_depth(self):
        """Number of bid levels."""
        return self.side[0].n

    @property
    def ask_depth(self):
        """Number of ask levels."""
        return self.side[1].n

    def bids(self, n=None):
        """Bid levels as ``(price, amount)``, best (highest) first; the best ``n`` if given."""
        return side_list(&self.side[0], 1.0, n)

    def asks(self, n=None):
        """Ask levels as ``(price, amount)``, best (lowest) first; the best ``n`` if given."""
        return side_list(&self.side[1], -1.0, n)

    def to_numpy(self, n=None):
        """``(bids, asks)`` as float64 arrays of shape (levels, 2), best first. Needs NumPy
        (imported here, on first use; drbfast does not depend on it)."""
        return side_numpy(&self.side[0], 1.0, n), side_numpy(&self.side[1], -1.0, n)

    def snapshot(self, n=None):
        """A stable :class:`~drbfast.book.BookSnapshot` (plain lists) of the book now."""
        return BookSnapshot(self.channel, side_list(&self.side[0], 1.0, n), side_list(&self.side[1], -1.0, n),
                            self._change_id, self._timestamp, self.rx_ns, self.synced)

    def copy(self):
        """An independent OrderBook with the same levels and state (counters start at 0)."""
        cdef OrderBook other = OrderBook(self.channel)
        cdef int i
        for i in range(2):
            if reserve_side(&other.side[i], self.side[i].n) < 0:
                raise MemoryError()
            if self.side[i].n:
                memcpy(other.side[i].lv, self.side[i].lv, self.side[i].n * sizeof(Level))
            other.side[i].n = self.side[i].n
        other.synced = self.synced
        other._change_id = self._change_id
        other._timestamp = self._timestamp
        other.rx_ns = self.rx_ns
        return other

    def counters(self):
        """Every counter as a dict (for stats and events)."""
        return {
            "updates": self.updates, "snapshots": self.snapshots, "levels": self.levels,
            "gaps": self.gaps, "unknown_levels": self.unknown_levels, "crossed": self.crossed,
            "parse_errors": self.parse_errors, "ignored": self.ignored, "other": self.other,
            "resyncs": self.resyncs, "no_memory": self.no_memory,
        }

    def __repr__(self):
        return (f"<OrderBook {self.channel} {'synced' if self.synced else 'resyncing'} "
                f"{self.side[0].n}x{self.side[1].n} bid={self.best_bid} ask={self.best_ask} "
                f"change_id={self._change_id}>")


def measure_apply(OrderBook book, list payloads, int64_t rx_ns=1):
    """Apply each message through the C entry point, timing each call with
    CLOCK_MONOTONIC; returns the nanoseconds per message (a benchmark helper: no Python
    call per message, as in the listener)."""
    cdef Py_ssize_t i, n = len(payloads)
    cdef int64_t t0, t1
    cdef bytes p
    out = [0] * n
    for i in range(n):
        p = payloads[i]
        t0 = now_ns()
        book_apply(book, PyBytes_AS_STRING(p), PyBytes_GET_SIZE(p), rx_ns)
        t1 = now_ns()
        out[i] = t1 - t0
    return out


def apply_all(OrderBook book, list payloads, int64_t rx_ns=1):
    """Apply every message through the C entry point; returns the number of statuses other
    than APPLIED/SNAPSHOT (a benchmark and test helper for the listener's path)."""
    cdef Py_ssize_t i, n = len(payloads)
    cdef Py_ssize_t bad = 0
    cdef bytes p
    cdef int st
    for i in range(n):
        p = payloads[i]
        st = book_apply(book, PyBytes_AS_STRING(p), PyBytes_GET_SIZE(p), rx_ns)
        if st != BOOK_APPLIED and st != BOOK_SNAPSHOT:
            bad += 1
    return bad
