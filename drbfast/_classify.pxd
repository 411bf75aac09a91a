# C interface of the byte classifier, cimported by the listener.
# The K_* and L_* enums are defined in _enums.pxd (drbfast.kinds names them).

from drbfast._enums cimport (K_HEARTBEAT, K_OTHER, K_TEST_REPLY, K_TEST_REQUEST, K_UNKNOWN, L_BOOK,
                             L_CONFLATE, L_ORDERED, L_PRIORITY, L_UNKNOWN)

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
