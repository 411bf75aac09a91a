# The one JSON scanner of the compiled modules: byte tables, whitespace, strings (escapes,
# strict UTF-8), numbers and skip_value, as inline functions. An inline function in a .pxd
# is compiled into each module that cimports it (no extension module of its own), so the
# classifier (_classify.pyx) and the book (_book.pyx) read JSON with the same code.
#
# Each function takes the position and the end and returns the position after what it
# read, or NULL when the bytes are not what JSON accepts. "status" arguments: ST_OK, or
# ST_DEFER when the input is valid JSON but past this scanner's limits (nesting deeper
# than the caller's limit, an integer longer than Python accepts); each caller decides
# what a deferral means (the classifier: UNKNOWN, the oracle decides; the book:
# PARSE_ERROR).

from libc.stdint cimport uint64_t
from libc.string cimport memcmp

ctypedef unsigned char uchar

cdef enum:
    ST_OK = 0
    ST_DEFER = 2
    SCAN_MAX_DEPTH = 256       # the stack of skip_value: no caller's limit may exceed it
    MAX_INT_DIGITS = 4300      # sys.get_int_max_str_digits(): a longer int is a ValueError


cdef extern from *:
    """
    #include <stdint.h>
    #include <string.h>
    /* DRBFAST_PLAIN[c] is 1 for a byte that stands for itself inside a JSON string:
       printable ASCII except '"' (0x22) and '\\\\' (0x5c). Control bytes and UTF-8 bytes
       (0x80-0xff, left 0 by the initializer) take the slow loop. */
    static const unsigned char DRBFAST_PLAIN[256] = {
        0,0,0,0,0,0,0,0, 0,0,0,0,0,0,0,0, 0,0,0,0,0,0,0,0, 0,0,0,0,0,0,0,0,
        1,1,0,1,1,1,1,1, 1,1,1,1,1,1,1,1, 1,1,1,1,1,1,1,1, 1,1,1,1,1,1,1,1,
        1,1,1,1,1,1,1,1, 1,1,1,1,1,1,1,1, 1,1,1,1,1,1,1,1, 1,1,1,1,0,1,1,1,
        1,1,1,1,1,1,1,1, 1,1,1,1,1,1,1,1, 1,1,1,1,1,1,1,1, 1,1,1,1,1,1,1,1,
    };
    /* Index of the first byte in p[0:8] that is not plain string text ('"', '\\\\',
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
    const uchar* PLAIN "DRBFAST_PLAIN"
    int special8 "drbfast_special8"(const uchar* p) noexcept nogil


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


cdef inline const uchar* scan_string(const uchar* p, const uchar* end,
                                     char* buf, int* buflen, int cap) noexcept nogil:
    """Validate a JSON string whose opening quote is at p[-1]; return the byte after
    its closing quote, or NULL if invalid (a bad escape, a raw control byte, UTF-8 that
    Python's strict decoder refuses: overlongs, encoded surrogates, above U+10FFFF; a
    \\uXXXX lone surrogate is valid JSON). If buf is not NULL, the longest ASCII prefix
    of the decoded text (at most cap chars) is written there and *buflen says how much:
    its length when that is the whole string, else -1 - length (so an exact comparison
    fails, while a prefix comparison still works)."""
    cdef int stored = 0
    cdef bint whole = True      # buf holds the entire decoded string
    cdef uchar c, c1
    cdef int code, i, h
    if buf != NULL:
        while p < end and PLAIN[p[0]]:
            if whole:
                if stored < cap:
                    buf[stored] = <char>p[0]
                    stored += 1
                else:
                    whole = False
            p += 1
    else:
        p = plain_run(p, end)
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
                if code < 0x80 and stored < cap:
                    buf[stored] = <char>code
                    stored += 1
                else:
                    whole = False   # non-ASCII, or past the cap: the prefix ends here
            continue
        if c < 0x20:  # raw control characters are not allowed in JSON strings
            return NULL
        if c < 0x80:
            if whole and buf != NULL:
                if stored < cap:
                    buf[stored] = <char>c
                    stored += 1
                else:
                    whole = False
            p += 1
            if buf == NULL:
                p = plain_run(p, end)
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
        if buf == NULL:
            p = plain_run(p, end)
    return NULL


cdef inline const uchar* skip_string(const uchar* p, const uchar* end) noexcept nogil:
    """Validate and skip a string whose opening quote is at p[-1] (see scan_string)."""
    p = plain_run(p, end)
    if p < end and p[0] == 34:
        return p + 1
    return scan_string(p, end, NULL, NULL, 0)


# The parts of a JSON number a caller needs to build its value (scan_number, d != NULL).
ctypedef struct Decimal:
    bint neg
    uint64_t m          # the first 19 significant digits
    int nd              # significant digits held in m
    int e10             # value = m * 10**e10 unless slow
    bint slow           # more than 19 significant digits or a 6+ digit exponent
    bint is_float       # had a fraction or an exponent
    Py_ssize_t int_digits


cdef inline const uchar* scan_number(const uchar* p, const uchar* end, int* status,
                                     Decimal* d) noexcept nogil:
    """-?(0|[1-9][0-9]*)(\\.[0-9]+)?([eE][+-]?[0-9]+)?  (RFC 8259 section 6), validated;
    with d != NULL its parts are collected too. An integer longer than MAX_INT_DIGITS
    (Python refuses to build it: the oracle and json call it invalid) sets *status to
    ST_DEFER and is still skipped."""
    cdef const uchar* start
    cdef Py_ssize_t int_digits
    cdef bint is_float = False
    cdef bint exneg = False
    cdef int ex = 0, exd = 0
    cdef uchar c
    if d != NULL:
        d.neg = False
        d.m = 0
        d.nd = 0
        d.e10 = 0
        d.slow = False
    if p < end and p[0] == 45:  # '-'
        if d != NULL:
            d.neg = True
        p += 1
    if p >= end:
        return NULL
    start = p
    if p[0] == 48:  # a leading '0' stands alone
        p += 1
    elif p[0] >= 49 and p[0] <= 57:
        while p < end and p[0] >= 48 and p[0] <= 57:
            if d != NULL:
                if d.nd < 19:
                    d.m = d.m * 10 + (p[0] - 48)
                    d.nd += 1
                else:
                    d.slow = True
            p += 1
    else:
        return NULL
    int_digits = p - start
    if d != NULL:
        d.int_digits = int_digits
    if p < end and p[0] == 46:  # '.'
        p += 1
        is_float = True
        if p >= end or p[0] < 48 or p[0] > 57:
            return NULL
        while p < end and p[0] >= 48 and p[0] <= 57:
            if d != NULL:
                c = p[0] - 48
                if d.m == 0 and c == 0:
                    d.e10 -= 1                  # leading zeros of 0.0005
                elif d.nd < 19:
                    d.m = d.m * 10 + c
                    d.nd += 1
                    d.e10 -= 1
                else:
                    d.slow = True
            p += 1
    if p < end and (p[0] == 101 or p[0] == 69):  # 'e' 'E'
        p += 1
        is_float = True
        if p < end and (p[0] == 43 or p[0] == 45):
            exneg = p[0] == 45
            p += 1
        if p >= end or p[0] < 48 or p[0] > 57:
            return NULL
        while p < end and p[0] >= 48 and p[0] <= 57:
            if d != NULL and exd < 6:
                ex = ex * 10 + (p[0] - 48)
            exd += 1
            p += 1
        if d != NULL:
            if exd >= 6:
                d.slow = True
            d.e10 = d.e10 - ex if exneg else d.e10 + ex
    if d != NULL:
        d.is_float = is_float
    if not is_float and int_digits > MAX_INT_DIGITS:
        status[0] = ST_DEFER
    return p


cdef inline const uchar* skip_nested(const uchar* p, const uchar* end, int* status,
                                     int limit, bint strict_empty) noexcept nogil:
    """Validate and skip one JSON value starting at p (whitespace allowed before it).
    Returns the byte after it; NULL if invalid, or deferred (*status ST_DEFER) when a
    container would open more than `limit` (<= SCAN_MAX_DEPTH) nested containers.

    Two depth rules, one per caller, kept as they were before the scanners merged:
    strict_empty False (the classifier, limit 256): an empty {} or [] never counts, so
    256 non-empty containers may be open; strict_empty True (the book, limit 255): an
    empty container is refused at the same depth as a non-empty one."""
    cdef uchar stack[SCAN_MAX_DEPTH]
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
                if strict_empty and depth >= limit:
                    status[0] = ST_DEFER
                    return NULL
                p = skip_ws(p + 1, end)
                if p >= end:
                    return NULL
                if (c == 123 and p[0] == 125) or (c == 91 and p[0] == 93):
                    p += 1
                    state = 1
                    continue
                if depth >= limit:
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
                p = scan_number(p, end, status, NULL)
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


cdef inline const uchar* skip_value(const uchar* p, const uchar* end, int* status,
                                    int limit, bint strict_empty) noexcept nogil:
    """skip_nested for a value at p (p < end, no leading whitespace): scalars inline,
    containers through the state machine."""
    cdef uchar c = p[0]
    if c == 34:
        return skip_string(p + 1, end)
    if c == 45 or (c >= 48 and c <= 57):
        return scan_number(p, end, status, NULL)
    if c == 123 or c == 91:
        return skip_nested(p, end, status, limit, strict_empty)
    if c == 116:
        return p + 4 if end - p >= 4 and memcmp(p, b"true", 4) == 0 else NULL
    if c == 102:
        return p + 5 if end - p >= 5 and memcmp(p, b"false", 5) == 0 else NULL
    if c == 110:
        return p + 4 if end - p >= 4 and memcmp(p, b"null", 4) == 0 else NULL
    return NULL
