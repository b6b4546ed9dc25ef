"""The compiled kernels' on-disk cache is emptied when any source they are built from changes."""

from __future__ import annotations

from nprnn.kernels.compiled import _cache


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
