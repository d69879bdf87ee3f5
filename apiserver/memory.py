"""Give freed heap memory back to the operating system after a burst of connections.

CPython frees a closed connection's objects, but glibc keeps the freed heap pages (the many
small allocations of 1,500 connections leave the heap fragmented, and glibc only trims its top),
so RSS would stay at the peak after the clients left. ``malloc_trim(0)`` returns every free page
of every arena. It costs a heap walk (milliseconds), so ``ConnectionLimiter`` calls it only after
the open connections halved from a peak of at least ``TRIM_MIN_PEAK``. A no-op without glibc.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
from collections.abc import Callable

log = logging.getLogger(__name__)
TRIM_MIN_PEAK = 64


def _load_trim() -> Callable[[int], int] | None:
    name = ctypes.util.find_library("c")
    if not name:
        return None
    try:
        libc = ctypes.CDLL(name)
        trim: Callable[[int], int] = libc.malloc_trim
    except (OSError, AttributeError):
        return None
    return trim


_TRIM = _load_trim()


def trim() -> bool:
    """Return free heap pages to the OS; whether anything could be done."""
    if _TRIM is None:
        return False
    return bool(_TRIM(0))
