# The classifier's C enums, the one definition of their values: cimported by
# _classify.pxd (and so by the classifier and the listener) and by _kinds.pyx, which
# gives them their Python names (drbfast.kinds). A declaration file only: no module
# of its own, so cimporting it imports nothing at run time. Do not renumber.

# What a message is (drbfast.kinds.Kind).
cdef enum:
    K_OTHER = 0
    K_HEARTBEAT = 1
    K_TEST_REQUEST = 2
    K_TEST_REPLY = 3
    K_UNKNOWN = 4

# Delivery lanes of an OTHER message (drbfast.kinds.Lane).
cdef enum:
    L_UNKNOWN = 0     # the fast matcher did not decide: ask the oracle (lane_reference)
    L_PRIORITY = 1    # reply to a request, or a user.* notification: never dropped
    L_ORDERED = 2     # other notifications and anything unrecognised: byte-bounded FIFO
    L_CONFLATE = 3    # latest-value channel: one pending message per channel
    L_BOOK = 4        # book.* channel: reset (resubscribe) instead of a late backlog

