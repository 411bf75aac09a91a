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

ctypedef unsigned char uchar

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
# params; channel before data): the channel name starts right after these 62 bytes.
cdef const char* SUB_PREFIX = b'{"jsonrpc":"2.0","method":"subscription","params":{"channel":"'
DEF SUB_PREFIX_LEN = 62

cdef const char* ENGINE_PREFIX = b'~drbfast~'   # drbfast.frames.ENGINE_ID_PREFIX
DEF ENGINE_PREFIX_LEN = 9

DEF MAX_DEPTH = 256         # deeper nesting: UNKNOWN (the oracle decides)
DEF MAX_INT_DIGITS = 4300   # sys.get_int_max_str_digits(): a longer int is a ValueError
DEF DECODE_CAP = 32         # decoded string prefix kept for comparisons

# Key ids
DEF KEY_OTHER = 0
DEF KEY_METHOD = 1
DEF KEY_PARAMS = 2
DEF KEY_ID = 3
DEF KEY_RESULT = 4
DEF KEY_ERROR = 5
DEF KEY_TYPE = 6

# Scanner results beside a pointer: NULL is "invalid JSON".
DEF ST_OK = 0
DEF ST_INVALID = 1
DEF ST_DEFER = 2


# PLAIN[c] is 1 for a byte that stands for itself inside a JSON string: printable
# ASCII except '"' (34) and '\\' (92). Control bytes and UTF-8 lead bytes take the slow loop.
cdef uchar PLAIN[256]
cdef int _c
for _c in range(256):
    PLAIN[_c] = 1 if (0x20 <= _c < 0x80 and _c != 34 and _c != 92) else 0


cdef inline const uchar* skip_ws(const uchar* p, const uchar* end) noexcept nogil:
    # JSON whitespace is exactly these four bytes (RFC 8259 section 2).
    while p < end and (p[0] == 0x20 or p[0] == 0x0A or p[0] == 0x0D or p[0] == 0x09):
        p += 1
    return p


cdef inline int hexval(uchar c) noexcept nogil:
    if c >= 48 and c <= 57:
        return c - 48
    if c >= 97 and c <= 102:
        return c - 87
    if c >= 65 and c <= 70:
        return c - 55
    return -1


cdef const uchar* scan_string(const uchar* p, const uchar* end,
                              char* buf, int* buflen) noexcept nogil:
    """Validate a JSON string whose opening quote is at p[-1]; return the byte after
    its closing quote, or NULL if invalid. If buf is not NULL, the longest ASCII prefix
    of the decoded text (at most DECODE_CAP chars) is written there and *buflen says
    how much: its length when that is the whole string, else -1 - length (so an exact
    comparison fails, while a prefix comparison still works)."""
    cdef int stored = 0
    cdef bint whole = True      # buf holds the entire decoded string
    cdef uchar c, c1
    cdef int code, i, h
    # Fast loop over plain printable ASCII (most of every Deribit string).
    if buf != NULL:
        while p < end and PLAIN[p[0]]:
            if whole:
                if stored < DECODE_CAP:
                    buf[stored] = <char>p[0]
                    stored += 1
                else:
                    whole = False
            p += 1
    else:
        while p < end and PLAIN[p[0]]:
            p += 1
    while p < end:
        c = p[0]
        if c == 34:  # '"'
            if buf != NULL:
                buflen[0] = stored if whole else -1 - stored
            return p + 1
        if c == 92:  # '\\'
            if p + 1 >= end:
                return NULL
            c1 = p[1]
            if c1 == 117:  # 'u' + 4 hex digits
                if p + 6 > end:
                    return NULL
                code = 0
                for i in range(2, 6):
                    h = hexval(p[i])
                    if h < 0:
                        return NULL
                    code = code * 16 + h
                p += 6
            else:
                if c1 == 34 or c1 == 92 or c1 == 47:
                    code = c1
                elif c1 == 98:
                    code = 8
                elif c1 == 102:
                    code = 12
                elif c1 == 110:
                    code = 10
                elif c1 == 114:
                    code = 13
                elif c1 == 116:
                    code = 9
                else:
                    return NULL
                p += 2
            if whole and buf != NULL:
                if code < 0x80 and stored < DECODE_CAP:
                    buf[stored] = <char>code
                    stored += 1
                else:
                    whole = False   # non-ASCII, or past the cap: the prefix ends here
            continue
        if c < 0x20:  # raw control characters are not allowed in JSON strings
            return NULL
        if c < 0x80:
            if whole and buf != NULL:
                if stored < DECODE_CAP:
                    buf[stored] = <char>c
                    stored += 1
                else:
                    whole = False
            p += 1
            continue
        # Well-formed UTF-8 as Python's strict decoder accepts it (no overlongs, no
        # encoded surrogates, nothing above U+10FFFF). Non-ASCII ends the stored prefix.
        whole = False
        if c >= 0xC2 and c <= 0xDF:
            if p + 2 > end or (p[1] & 0xC0) != 0x80:
                return NULL
            p += 2
        elif c >= 0xE0 and c <= 0xEF:
            if p + 3 > end or (p[2] & 0xC0) != 0x80:
                return NULL
            c1 = p[1]
            if c == 0xE0:
                if c1 < 0xA0 or c1 > 0xBF:
                    return NULL
            elif c == 0xED:
                if c1 < 0x80 or c1 > 0x9F:
                    return NULL
            elif (c1 & 0xC0) != 0x80:
                return NULL
            p += 3
        elif c >= 0xF0 and c <= 0xF4:
            if p + 4 > end or (p[2] & 0xC0) != 0x80 or (p[3] & 0xC0) != 0x80:
                return NULL
            c1 = p[1]
            if c == 0xF0:
                if c1 < 0x90 or c1 > 0xBF:
                    return NULL
            elif c == 0xF4:
                if c1 < 0x80 or c1 > 0x8F:
                    return NULL
            elif (c1 & 0xC0) != 0x80:
                return NULL
            p += 4
        else:
            return NULL
    return NULL


cdef extern from *:
    """
    #include <stdint.h>
    #include <string.h>
    /* Index of the first byte in p[0:8] that is not plain string text ('"', '\\',
       a control byte or a UTF-8 byte), or 8 if there is none. SWAR on one little-endian
       64-bit load: for each test the lowest flagged byte is exact (borrows only flag
       bytes above a real hit), so the lowest bit of the union is the answer. */
    static inline int drbfast_special8(const unsigned char* p) {
        const uint64_t ones = 0x0101010101010101ULL, highs = 0x8080808080808080ULL;
        uint64_t x, q, b, m;
        memcpy(&x, p, 8);
        q = x ^ (ones * 0x22);
        b = x ^ (ones * 0x5C);
        m = (x & highs)
          | ((x - ones * 0x20) & ~x & highs)
          | ((q - ones) & ~q & highs)
          | ((b - ones) & ~b & highs);
    #if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
        return m ? (__builtin_clzll(m) >> 3) : 8;
    #else
        return m ? (__builtin_ctzll(m) >> 3) : 8;
    #endif
    }
    """
    int special8 "drbfast_special8"(const unsigned char* p) noexcept nogil


cdef inline const uchar* plain_run(const uchar* p, const uchar* end) noexcept nogil:
    """Skip plain string bytes (PLAIN): eight at a time, then one at a time."""
    cdef int k
    while end - p >= 8:
        k = special8(p)
        p += k
        if k < 8:
            return p
    while p < end and PLAIN[p[0]]:
        p += 1
    return p


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
    return scan_string(start, end, buf, n)


cdef inline const uchar* skip_string(const uchar* p, const uchar* end) noexcept nogil:
    p = plain_run(p, end)
    if p < end and p[0] == 34:
        return p + 1
    return scan_string(p, end, NULL, NULL)


cdef inline const uchar* scan_number(const uchar* p, const uchar* end,
                                     int* status) noexcept nogil:
    # -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?  (RFC 8259 section 6)
    cdef const uchar* start
    cdef Py_ssize_t int_digits
    cdef bint is_float = False
    if p < end and p[0] == 45:  # '-'
        p += 1
    if p >= end:
        return NULL
    start = p
    if p[0] == 48:  # '0'
        p += 1
    elif p[0] >= 49 and p[0] <= 57:
        while p < end and p[0] >= 48 and p[0] <= 57:
            p += 1
    else:
        return NULL
    int_digits = p - start
    if p < end and p[0] == 46:  # '.'
        p += 1
        is_float = True
        if p >= end or p[0] < 48 or p[0] > 57:
            return NULL
        while p < end and p[0] >= 48 and p[0] <= 57:
            p += 1
    if p < end and (p[0] == 101 or p[0] == 69):  # 'e' 'E'
        p += 1
        is_float = True
        if p < end and (p[0] == 43 or p[0] == 45):
            p += 1
        if p >= end or p[0] < 48 or p[0] > 57:
            return NULL
        while p < end and p[0] >= 48 and p[0] <= 57:
            p += 1
    if not is_float and int_digits > MAX_INT_DIGITS:
        # Python refuses to build such an int: the oracle calls it invalid.
        status[0] = ST_DEFER
    return p


cdef inline const uchar* skip_member_value(const uchar* p, const uchar* end, int* status) noexcept nogil:
    """skip_value for a value at p (no leading whitespace): scalars inline, containers
    through the general state machine."""
    cdef uchar c = p[0]
    if c == 34:
        return skip_string(p + 1, end)
    if c == 45 or (c >= 48 and c <= 57):
        return scan_number(p, end, status)
    if c == 123 or c == 91:
        return skip_value(p, end, status)
    if c == 116:
        return p + 4 if end - p >= 4 and memcmp(p, b"true", 4) == 0 else NULL
    if c == 102:
        return p + 5 if end - p >= 5 and memcmp(p, b"false", 5) == 0 else NULL
    if c == 110:
        return p + 4 if end - p >= 4 and memcmp(p, b"null", 4) == 0 else NULL
    return NULL


cdef const uchar* skip_value(const uchar* p, const uchar* end, int* status) noexcept nogil:
    """Validate and skip one JSON value starting at p (whitespace allowed before it).
    Returns the byte after it; NULL if invalid or deferred (see *status)."""
    cdef uchar stack[MAX_DEPTH]
    cdef int depth = 0
    cdef uchar c
    # state 0: expect a value; 1: after a value; 2: expect an object key
    cdef int state = 0
    while True:
        if state == 0:
            p = skip_ws(p, end)
            if p >= end:
                return NULL
            c = p[0]
            if c == 123 or c == 91:  # '{' '['
                p = skip_ws(p + 1, end)
                if p >= end:
                    return NULL
                if (c == 123 and p[0] == 125) or (c == 91 and p[0] == 93):
                    p += 1
                    state = 1
                    continue
                if depth >= MAX_DEPTH:
                    status[0] = ST_DEFER
                    return NULL
                stack[depth] = c
                depth += 1
                state = 2 if c == 123 else 0
                continue
            if c == 34:
                p = skip_string(p + 1, end)
            elif c == 116:  # true
                if end - p < 4 or memcmp(p, b"true", 4) != 0:
                    return NULL
                p += 4
            elif c == 102:  # false
                if end - p < 5 or memcmp(p, b"false", 5) != 0:
                    return NULL
                p += 5
            elif c == 110:  # null
                if end - p < 4 or memcmp(p, b"null", 4) != 0:
                    return NULL
                p += 4
            elif c == 45 or (c >= 48 and c <= 57):
                p = scan_number(p, end, status)
            else:
                return NULL
            if p == NULL:
                return NULL
            state = 1
        elif state == 1:
            if depth == 0:
                return p
            p = skip_ws(p, end)
            if p >= end:
                return NULL
            c = p[0]
            if c == 44:  # ','
                p += 1
                state = 2 if stack[depth - 1] == 123 else 0
            elif (c == 125 and stack[depth - 1] == 123) or (c == 93 and stack[depth - 1] == 91):
                p += 1
                depth -= 1
            else:
                return NULL
        else:
            p = skip_ws(p, end)
            if p >= end or p[0] != 34:
                return NULL
            p = skip_string(p + 1, end)
            if p == NULL:
                return NULL
            p = skip_ws(p, end)
            if p >= end or p[0] != 58:  # ':'
                return NULL
            p += 1
            state = 0


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
                p = skip_member_value(p, end, status)
        else:
            p = skip_member_value(p, end, status)
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
                p = skip_member_value(p, end, &status)
        else:
            if key == KEY_RESULT:
                has_result = True
            elif key == KEY_ERROR:
                has_error = True
            # (a duplicate method/id/params: the first occurrence already decided)
            p = skip_member_value(p, end, &status)
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
