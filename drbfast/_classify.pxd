# C interface of the byte classifier, cimported by the listener.
# The enum values are shared with drbfast.kinds.Kind; do not renumber.

cdef enum:
    K_OTHER = 0
    K_HEARTBEAT = 1
    K_TEST_REQUEST = 2
    K_TEST_REPLY = 3
    K_UNKNOWN = 4

# Delivery lanes of an OTHER message; shared with drbfast.kinds.Lane; do not renumber.
cdef enum:
    L_UNKNOWN = 0     # the fast matcher did not decide: ask the oracle (lane_reference)
    L_PRIORITY = 1    # reply to a request, or a user.* notification: never dropped
    L_ORDERED = 2     # other notifications and anything unrecognised: byte-bounded FIFO
    L_CONFLATE = 3    # latest-value channel: one pending message per channel
    L_BOOK = 4        # book.* channel: reset (resubscribe) instead of a late backlog

ctypedef struct ClassifyResult:
    int kind          # one of K_*
    int is_error      # TEST_REPLY only: the reply carried an "error" member
    long long seq     # TEST_REPLY only: engine sequence number, -1 if not plain digits
    int lane          # OTHER only: one of L_*, L_UNKNOWN when only the oracle can tell
    Py_ssize_t chan_off   # params.channel as a slice data[chan_off:chan_off+chan_len]
    Py_ssize_t chan_len   # (plain ASCII, no escapes); chan_len 0: no channel

# Sort one complete message (kind, and for OTHER the lane where the production layout
# makes it cheap). Reads data[0:size] only; allocates nothing; no GIL needed.
cdef int classify_msg(const char* data, Py_ssize_t size, ClassifyResult* out) noexcept nogil
