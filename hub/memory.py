"""Process-wide memory settings, applied once when the ``hub`` command starts."""
from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os

log = logging.getLogger(__name__)

#: glibc's ``mallopt`` parameter for the number of malloc arenas (``M_ARENA_MAX``).
_M_ARENA_MAX = -8
#: Arenas the hub allows: glibc's default is 8 per core, and every thread that allocates
#: while another holds an arena gets its own, which keeps freed memory per thread.  A commit
#: that applies segments on several threads grew a 1M-row HBase checkpoint from 262 MB to
#: 385 MB peak RSS that way, with only 61-91 MB of Arrow data alive.  Arrow's buffers come
#: from its own allocator, so few arenas cost no speed on the paths measured.
ARENAS = 2


def limit_malloc_arenas(arenas: int = ARENAS) -> bool:
    """Cap glibc's malloc arenas at ``arenas`` unless ``MALLOC_ARENA_MAX`` is set (the user's
    choice wins; glibc read it at start).  Returns whether the cap was applied: False on a C
    library without ``mallopt`` (musl, macOS), where nothing changes."""
    if os.environ.get("MALLOC_ARENA_MAX"):
        return False
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    ok = bool(mallopt(_M_ARENA_MAX, arenas))
    if not ok:
        log.debug("mallopt(M_ARENA_MAX, %d) was refused", arenas)
    return ok
