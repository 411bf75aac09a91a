# C interface of the byte classifier, cimported by the listener.
# The enum values are shared with drbfast.kinds.Kind; do not renumber.

cdef enum:
    K_OTHER = 0
    K_HEARTBEAT = 1
    K_TEST_REQUEST = 2
    K_TEST_REPLY = 3
    K_UNKNOWN = 4

ctypedef struct ClassifyResult:
    int kind          # one of K_*
    int is_error      # TEST_REPLY only: the reply carried an "error" member
    long long seq     # TEST_REPLY only: engine sequence number, -1 if not plain digits

# Sort one complete message. Reads data[0:size] only; allocates nothing; no GIL needed.
cdef int classify_msg(const char* data, Py_ssize_t size, ClassifyResult* out) noexcept nogil
