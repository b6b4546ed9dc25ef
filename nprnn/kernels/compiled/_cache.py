"""Numba's on-disk cache of the compiled kernels: kept consistent with their sources, and
never the reason a call fails.

**Staleness.** Numba checks a cached kernel against the file that defines it only, but the
machine code it caches also holds what the kernel calls from other files: :mod:`._loops`,
the activations of :mod:`nprnn.kernels._fast_math`, the cells the fused step calls. An
in-place update that leaves the kernel's own file untouched (``git pull``, an edit) would
otherwise run the old code. :func:`drop_stale` keeps a fingerprint of all these sources
beside the cache and empties the cache when it changes.

**Failures.** The cache is an optimisation: a kernel whose cache cannot be written or read
must still run, compiled. Numba does not treat it so: its ``Cache.save_overload`` and
``load_overload`` ignore only ``EACCES``, and only on Windows, so a full disk (``ENOSPC``),
a quota (``EDQUOT``), a file-size limit (``EFBIG``) or a file system turned read-only
(``EROFS``) while Numba writes a kernel's ``.nbi``/``.nbc``, or a truncated or corrupt
cache file when it reads one (``UnpicklingError``, ``EOFError``: e.g. the zero-length files
a power cut can leave), raise out of the first call of the kernel, i.e. out of a user's
``fit`` or ``predict``, although the compiled code is fine.
:func:`guard_kernels` therefore wraps the cache of every ``cache=True`` dispatcher of the
kernel modules in a :class:`GuardedCache`: a failed save costs the cache only, a failed
load costs one compilation (and rewrites the entry); each warns once per cache directory
with a ``RuntimeWarning`` naming the directory and the error.

Numba behaviour this relies on (``numba/core/dispatcher.py`` and ``numba/core/caching.py``,
read in numba 0.68): ``@njit(cache=True)`` gives a ``Dispatcher`` whose ``_cache``
attribute holds the cache (a ``NullCache`` without ``cache=True``); ``Dispatcher.compile``
calls ``_cache.load_overload(sig, target_context)`` before compiling (``None`` means a
miss) and ``_cache.save_overload(sig, compile_result)`` after it has added the compiled
overload, so the code runs whatever the save does; ``_cache.flush()`` rewrites the
function's index empty and ``_cache.cache_path`` is the directory. The wrapper touches
nothing else; ``tests/test_kernel_cache.py`` fails if these stop holding. Wrapping the
cache Numba built, rather than subclassing ``FunctionCache``, keeps Numba's choice of
directory and its file format, and needs neither its constructor nor the private
``_guard_against_spurious_io_errors`` (which, being about ``OSError``, would not see a
corrupt pickle either).
"""

from __future__ import annotations

import hashlib
import importlib
import pkgutil
import warnings
from pathlib import Path

from numba.core.caching import NullCache
from numba.extending import is_jitted

_HERE = Path(__file__).parent
STAMP_NAME = "nprnn-kernel-sources.sha256"

#: The modules whose dispatchers :func:`guard_kernels` covers: every module of this package,
#: and the activations the kernels inline.
KERNEL_MODULES = ("nprnn.kernels._fast_math",) + tuple(
    f"nprnn.kernels.compiled.{info.name}" for info in pkgutil.iter_modules([str(_HERE)])
)


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
    cached kernels were removed. The fingerprint is written to a side file, then renamed
    over the stamp; when writing fails (full disk, read-only) the side file is removed, so
    the stamp is either whole or absent (absent: the next import empties the cache again).
    """
    digest = sources_digest()
    stamp = cache / STAMP_NAME
    try:
        if stamp.read_text() == digest:
            return False
    except OSError:
        pass
    partial = cache / (STAMP_NAME + ".partial")
    try:
        stale = list(cache.glob("*.nbi")) + list(cache.glob("*.nbc"))
        for path in stale:
            path.unlink(missing_ok=True)
        cache.mkdir(exist_ok=True)
        partial.write_text(digest)
        partial.replace(stamp)  # atomic: a reader sees the old stamp or the new one
    except OSError:  # read-only, or a full disk: no stamp, and no partial one
        try:
            partial.unlink(missing_ok=True)
        except OSError:
            pass
        return False
    return bool(stale)


_warned: set[tuple[str, str]] = set()  # (what failed, cache directory) already warned about


def _warn_once(what, cache_path, error):
    if (what, cache_path) in _warned:
        return
    _warned.add((what, cache_path))
    if what == "save":
        consequence = ("the kernels run compiled all the same, but are compiled again in "
                       "the next process")
        action = "written"
    else:
        consequence = "the kernel is compiled again and its cache entry rewritten"
        action = "read"
    warnings.warn(
        f"nprnn: Numba's cache of the compiled kernels in {cache_path!r} could not be "
        f"{action} ({type(error).__name__}: {error}); {consequence}",
        RuntimeWarning,
        stacklevel=2,
    )


class GuardedCache:
    """Numba's cache of one dispatcher, with its failures turned into one warning.

    Parameters
    ----------
    cache : numba.core.caching.Cache
        The dispatcher's own cache (``dispatcher._cache``); every call is passed on to it.

    A save that raises (any ``Exception``: ``OSError`` of a full or read-only disk, a
    pickling error) is dropped: the overload is already compiled and in use. A load that
    raises (a truncated or corrupt ``.nbi``/``.nbc``) is a miss: the function's index is
    rewritten empty (``flush``), so that the save after the compilation replaces the bad
    files instead of failing on them in turn.
    """

    def __init__(self, cache):
        self._cache = cache

    def __repr__(self):
        return f"GuardedCache({self._cache!r})"

    @property
    def cache_path(self):
        return self._cache.cache_path

    def enable(self):
        self._cache.enable()

    def disable(self):
        self._cache.disable()

    def flush(self):
        try:
            self._cache.flush()
        except Exception as error:
            _warn_once("save", self.cache_path, error)

    def load_overload(self, sig, target_context):
        try:
            return self._cache.load_overload(sig, target_context)
        except Exception as error:
            _warn_once("load", self.cache_path, error)
            try:
                self._cache.flush()
            except Exception:  # the save after the compilation warns if the disk fails
                pass
            return None  # a miss: Numba compiles

    def save_overload(self, sig, data):
        try:
            self._cache.save_overload(sig, data)
        except Exception as error:
            _warn_once("save", self.cache_path, error)

    def __getattr__(self, name):  # anything else Numba may ask of its cache
        if name == "_cache":  # not set yet (a copy being built): no recursion
            raise AttributeError(name)
        return getattr(self._cache, name)


def is_guarded(dispatcher):
    """True when ``dispatcher`` caches nothing (no ``cache=True``) or through a GuardedCache."""
    cache = dispatcher._cache
    return isinstance(cache, (NullCache, GuardedCache))


def guard(dispatcher):
    """Wrap the on-disk cache of a ``cache=True`` dispatcher in a :class:`GuardedCache`.

    Idempotent; a dispatcher without ``cache=True`` is left as it is. Returns it.
    """
    if not is_guarded(dispatcher):
        dispatcher._cache = GuardedCache(dispatcher._cache)
    return dispatcher


def guard_kernels():
    """Import every module of :data:`KERNEL_MODULES` and :func:`guard` each dispatcher in it.

    Called once when :mod:`nprnn.kernels.compiled` is imported, before any kernel runs; a
    kernel added later to one of these modules (at module level) is covered without more
    code. Returns the dispatchers seen (a module's own and those it imports).
    """
    seen = {}
    for name in KERNEL_MODULES:
        module = importlib.import_module(name)
        for value in list(vars(module).values()):
            if is_jitted(value):
                seen[id(value)] = guard(value)
    return list(seen.values())
