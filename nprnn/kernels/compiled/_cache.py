"""Numba's on-disk cache of the compiled kernels, kept consistent with their sources.

Numba checks a cached kernel against the file that defines it only, but the machine code it
caches also holds what the kernel calls from other files: :mod:`._loops`, the activations
of :mod:`nprnn.kernels._fast_math`, the cells the fused step calls. An in-place update that
leaves the kernel's own file untouched (``git pull``, an edit) would otherwise run the old
code. :func:`drop_stale` keeps a fingerprint of all these sources beside the cache and
empties the cache when it changes.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

_HERE = Path(__file__).parent
STAMP_NAME = "nprnn-kernel-sources.sha256"


def sources_digest():
    """SHA-256 of every source the compiled kernels are built from, in a fixed order."""
    sources = sorted(_HERE.glob("*.py")) + [_HERE.parent / "_fast_math.py"]
    digest = hashlib.sha256()
    for path in sources:
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def drop_stale(cache=_HERE / "__pycache__"):
    """Remove the cached kernels in ``cache`` unless its fingerprint matches the sources.

    Covers the cache beside the sources (Numba's default); a ``$NUMBA_CACHE_DIR`` elsewhere
    and a read-only install are left to Numba's own per-file check. Returns True when
    cached kernels were removed.
    """
    digest = sources_digest()
    stamp = cache / STAMP_NAME
    try:
        if stamp.read_text() == digest:
            return False
    except OSError:
        pass
    try:
        stale = list(cache.glob("*.nbi")) + list(cache.glob("*.nbc"))
        for path in stale:
            path.unlink(missing_ok=True)
        cache.mkdir(exist_ok=True)
        partial = cache / (STAMP_NAME + ".partial")
        partial.write_text(digest)
        partial.replace(stamp)  # atomic: a reader sees the old stamp or the new one
    except OSError:  # read-only: nothing of ours is cached there
        return False
    return bool(stale)
