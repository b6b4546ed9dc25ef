"""The compiled kernels' on-disk cache: emptied when any source they are built from changes;
a cache that cannot be written (full disk) or read (corrupt file) costs the cache, with one
warning, never the kernel's call."""

from __future__ import annotations

import errno
import gc
import importlib
import json
import os
import pkgutil
import shutil
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import numba
import numpy as np
import pytest
from numba import njit
from numba.core.caching import NullCache
from numba.core.dispatcher import Dispatcher
from numba.extending import is_jitted

from nprnn.kernels import _fast_math, reference
from nprnn.kernels._fast_math import JIT_OPTIONS
from nprnn.kernels.compiled import _cache, rmsprop


def _cached_files(folder):
    return sorted(path.name for path in folder.iterdir() if path.suffix in (".nbi", ".nbc"))


def test_a_stale_cache_is_emptied_and_a_fresh_one_kept(tmp_path, monkeypatch):
    for name in ("lstm._forward_core-56.py311.nbi", "lstm._forward_core-56.py311.1.nbc"):
        (tmp_path / name).write_bytes(b"old machine code")
    (tmp_path / "lstm.cpython-311.pyc").write_bytes(b"not Numba's")
    assert _cache.drop_stale(tmp_path) is True  # no fingerprint yet: stale
    assert _cached_files(tmp_path) == []
    assert (tmp_path / "lstm.cpython-311.pyc").exists()
    assert (tmp_path / _cache.STAMP_NAME).read_text() == _cache.sources_digest()

    (tmp_path / "gru._forward_core-58.py311.nbi").write_bytes(b"new machine code")
    assert _cache.drop_stale(tmp_path) is False  # same sources: the cache is kept
    assert _cached_files(tmp_path) == ["gru._forward_core-58.py311.nbi"]

    monkeypatch.setattr(_cache, "sources_digest", lambda: "0" * 64)  # a source changed
    assert _cache.drop_stale(tmp_path) is True
    assert _cached_files(tmp_path) == []
    assert (tmp_path / _cache.STAMP_NAME).read_text() == "0" * 64


def test_the_fingerprint_covers_the_loops_and_the_inlined_activations(tmp_path, monkeypatch):
    package = tmp_path / "compiled"
    package.mkdir()
    for path in _cache._HERE.glob("*.py"):
        (package / path.name).write_bytes(path.read_bytes())
    fast_math = _cache._HERE.parent / "_fast_math.py"
    (tmp_path / "_fast_math.py").write_bytes(fast_math.read_bytes())
    monkeypatch.setattr(_cache, "_HERE", package)
    digests = [_cache.sources_digest()]
    assert digests[0] == _cache.sources_digest()  # a function of the sources only
    for edited in (tmp_path / "_fast_math.py", package / "_loops.py", package / "fused.py"):
        edited.write_bytes(edited.read_bytes() + b"\n# edited\n")
        digests.append(_cache.sources_digest())
    assert len(set(digests)) == 4


# --- A cache that cannot be written or read costs the cache, never the call ----------------
#
# Numba (numba/core/caching.py) ignores cache I/O errors only for EACCES on Windows: without
# nprnn's guard, a full disk while a kernel's cache is written, or a corrupt cache file when
# it is read, raises out of the kernel's first call (a user's fit or predict).

ROOT = Path(__file__).resolve().parents[1]

SAVE_CHILD = textwrap.dedent('''
    import errno, json, resource, signal, sys, warnings
    import numpy as np
    from numba.core import caching
    from nprnn.kernels import compiled, reference

    if sys.argv[1] == "ENOSPC":  # a full disk, where Numba opens its cache files to write them
        def full_disk(self, path):
            raise OSError(errno.ENOSPC, "No space left on device", path)
        caching.IndexDataCacheFile._open_for_write = full_disk
    else:  # EFBIG: a real limit on file sizes (ulimit -f), Numba untouched
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        _, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
        resource.setrlimit(resource.RLIMIT_FSIZE, (1, hard))

    rng = np.random.default_rng(0)
    param, grad = rng.normal(size=(2, 3, 5))
    velocity = rng.random((3, 5))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        got = compiled.rmsprop_update(param, grad, velocity, 0.01, 0.9, 1e-7)
        rows = compiled.gather_rows(param, np.array([2, 0]))  # a second kernel (and its callee)
    want = reference.rmsprop_update(param, grad, velocity, 0.01, 0.9, 1e-7)
    core = compiled.rmsprop._rmsprop_core
    print(json.dumps({
        "max_error": max(float(abs(g - w).max()) for g, w in zip(got, want)),
        "rows_equal": bool((rows == param[[2, 0]]).all()),
        "compiled_here": len(core.overloads) == 1 and sum(core.stats.cache_misses.values()) == 1,
        "cache_path": core.stats.cache_path,
        "warnings": [[w.category.__name__, str(w.message)] for w in caught],
    }))
''')


@pytest.mark.skipif(sys.platform == "win32", reason="RLIMIT_FSIZE is POSIX")
@pytest.mark.parametrize("error", ["ENOSPC", "EFBIG"])
def test_a_cache_that_cannot_be_written_costs_the_cache_not_the_call(tmp_path, error):
    # a child with an empty cache of its own: the kernels compile there, and the session's
    # warm cache is left alone
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path)}
    done = subprocess.run([sys.executable, "-c", SAVE_CHILD, error], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout)
    assert report["max_error"] < 1e-12 and report["rows_equal"]
    assert report["compiled_here"]
    # one warning for the directory, however many kernels failed to save there
    assert len(report["warnings"]) == 1, report["warnings"]
    category, message = report["warnings"][0]
    assert category == "RuntimeWarning"
    assert report["cache_path"] in message and os.strerror(getattr(errno, error)) in message
    written = sorted(path.name for path in tmp_path.rglob("*") if path.is_file())
    assert not [name for name in written if ".nbc" in name], written  # no kernel, no temporary


def fresh_rmsprop_core():
    """A new guarded dispatcher of the RMSprop kernel: it reads Numba's cache on its first call
    (the package's own dispatcher compiled long ago in this session)."""
    return _cache.guard(njit(**JIT_OPTIONS)(rmsprop._rmsprop_core.py_func))


def rmsprop_through(core, monkeypatch):
    """Call the public compiled rmsprop_update through ``core``; its results, its warnings."""
    monkeypatch.setattr(rmsprop, "_rmsprop_core", core)
    rng = np.random.default_rng(1)
    param, grad = rng.normal(size=(2, 4, 3))
    velocity = rng.random((4, 3))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        got = rmsprop.rmsprop_update(param, grad, velocity, 0.01, 0.9, 1e-7)
    want = reference.rmsprop_update(param, grad, velocity, 0.01, 0.9, 1e-7)
    np.testing.assert_allclose(got, want, rtol=1e-12)
    return caught


@pytest.fixture(scope="module")
def written_cache(tmp_path_factory):
    """A cache folder holding the RMSprop kernel, written by Numba: its .nbi and .nbc."""
    folder = tmp_path_factory.mktemp("numba-cache")
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setattr(numba.config, "CACHE_DIR", str(folder))
        assert rmsprop_through(fresh_rmsprop_core(), monkeypatch) == []
    return folder


CORRUPTIONS = {
    "garbage index": ("*.nbi", lambda data: b"garbage\x00\xff"),
    "truncated data": ("*.nbc", lambda data: data[:100]),
    "empty data": ("*.nbc", lambda data: b""),  # what a power cut can leave
}


@pytest.mark.parametrize("corruption", CORRUPTIONS)
def test_a_corrupt_cache_file_costs_one_compilation_and_is_rewritten(
    written_cache, tmp_path, monkeypatch, corruption
):
    folder = tmp_path / "cache"
    shutil.copytree(written_cache, folder)
    pattern, corrupt = CORRUPTIONS[corruption]
    (path,) = folder.rglob(pattern)
    path.write_bytes(corrupt(path.read_bytes()))
    monkeypatch.setattr(numba.config, "CACHE_DIR", str(folder))

    core = fresh_rmsprop_core()
    caught = rmsprop_through(core, monkeypatch)  # correct results, not an UnpicklingError
    assert [w.category for w in caught] == [RuntimeWarning]
    assert core.stats.cache_path in str(caught[0].message)
    assert "could not be read" in str(caught[0].message)
    assert sum(core.stats.cache_misses.values()) == 1  # compiled, and saved again

    again = fresh_rmsprop_core()  # the next process: the rewritten cache loads
    assert rmsprop_through(again, monkeypatch) == []
    assert sum(again.stats.cache_hits.values()) == 1


def test_every_cached_kernel_of_the_package_is_guarded():
    import nprnn.kernels
    import nprnn.kernels.compiled  # noqa: F401  (guards at import)

    seen = []
    for info in pkgutil.walk_packages(nprnn.kernels.__path__, "nprnn.kernels."):
        module = importlib.import_module(info.name)
        seen += [value for value in vars(module).values() if is_jitted(value)]
    # and any other dispatcher nprnn has made so far, wherever it lives
    seen += [obj for obj in gc.get_objects()  # type(): weak proxies are there too
             if issubclass(type(obj), Dispatcher) and obj.py_func.__module__.startswith("nprnn.")]
    cached = [d for d in seen if not isinstance(d._cache, NullCache)]
    assert rmsprop._rmsprop_core in cached and _fast_math.tanh_f32 in cached  # cache=True
    unguarded = sorted({f"{d.py_func.__module__}.{d.__name__}"
                        for d in cached if not _cache.is_guarded(d)})
    assert unguarded == []


@pytest.mark.skipif(sys.platform == "win32", reason="RLIMIT_FSIZE is POSIX")
def test_drop_stale_on_a_full_disk_leaves_no_partial_stamp(tmp_path):
    (tmp_path / "gru._forward_core-58.py311.nbi").write_bytes(b"old machine code")
    (tmp_path / _cache.STAMP_NAME).write_text("0" * 64)  # an older fingerprint
    child = textwrap.dedent('''
        import json, resource, signal, sys
        from pathlib import Path
        from nprnn.kernels.compiled import _cache

        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        _, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
        resource.setrlimit(resource.RLIMIT_FSIZE, (16, hard))  # the stamp has 64 bytes
        print(json.dumps(_cache.drop_stale(Path(sys.argv[1]))))
    ''')
    done = subprocess.run([sys.executable, "-c", child, str(tmp_path)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout) is False
    assert sorted(path.name for path in tmp_path.iterdir()) == [_cache.STAMP_NAME]
    assert (tmp_path / _cache.STAMP_NAME).read_text() == "0" * 64  # whole: the old one
