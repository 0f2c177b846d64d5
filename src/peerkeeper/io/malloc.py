"""glibc malloc settings for a process that moves megabyte messages.

Every large message is a fresh ``bytes`` object of up to 4 MB (Core's
``MAX_PROTOCOL_MESSAGE_LENGTH``): framed on the way out, copied out of the receive buffer
on the way in. With glibc's defaults the freed megabyte at the top of the heap is
handed back to the kernel at once (``M_TRIM_THRESHOLD``) and the next one is faulted in
again, page by page: between two nodes on loopback this cost BIP324 more than its
cipher (bench/throughput.py, one run: v2 484 MB/s with glibc's defaults, 1,261 MB/s with
these settings; v1, whose receiver collects large bodies chunk by chunk, 951 and 1,016).

:func:`tune_malloc` keeps up to ``trim_threshold`` bytes of free heap (32 MiB), grows the
heap ``top_pad`` (16 MiB) at a time, and serves allocations below ``mmap_threshold``
(4 MiB, above the largest message) from the heap. The daemons (``peerkeeper node``,
``peerkeeperd``, ``peerkeeper lab``, ``peerkeeper crawl``) call it at start; a library
user may call it once. Like the ``MALLOC_*_`` environment variables it stands for
(mallopt(3)), it changes the whole process, so a library ``Node`` never calls it itself.
"""

from __future__ import annotations

import ctypes
import os
import sys

# <malloc.h>
M_TRIM_THRESHOLD = -1
M_TOP_PAD = -2
M_MMAP_THRESHOLD = -3

MIB = 1 << 20
#: The environment variables a user sets to choose for themself; any one set: we leave all.
ENV_VARS = (
    "MALLOC_TRIM_THRESHOLD_",
    "MALLOC_TOP_PAD_",
    "MALLOC_MMAP_THRESHOLD_",
    "GLIBC_TUNABLES",
)


def tune_malloc(
    *,
    trim_threshold: int = 32 * MIB,
    top_pad: int = 16 * MIB,
    mmap_threshold: int = 4 * MIB,
) -> bool:
    """Set glibc's ``M_TRIM_THRESHOLD``, ``M_TOP_PAD`` and ``M_MMAP_THRESHOLD`` (bytes).

    Returns True when all three were set; False (and nothing changed) off Linux, on
    a C library without ``mallopt`` or that refuses the values (musl), or when the
    user set one of :data:`ENV_VARS`. Never raises.
    """
    if not sys.platform.startswith("linux") or any(v in os.environ for v in ENV_VARS):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    results = [
        mallopt(M_MMAP_THRESHOLD, mmap_threshold),
        mallopt(M_TRIM_THRESHOLD, trim_threshold),
        mallopt(M_TOP_PAD, top_pad),
    ]
    return all(r == 1 for r in results)
