# The one clock of every ``*_ns`` timestamp in drbfast: CLOCK_MONOTONIC in nanoseconds.
# An inline function in a .pxd is compiled into each module that cimports it (no
# extension module of its own), so the listener, the book and the classifier's bench read the clock the same way.

from libc.stdint cimport int64_t


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
