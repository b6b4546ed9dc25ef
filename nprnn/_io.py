"""Atomic file writes: a reader sees the old file or the new one, never half of either.

The recipe is the usual one: write a temporary file in the *same* folder (so the final
``os.replace`` is a rename within one file system, which POSIX makes atomic), flush and
``fsync`` it, rename it over the target, then ``fsync`` the folder so the rename itself
survives a power cut. A process killed at any moment leaves either the previous file intact
or the new one complete; at worst a stray ``.tmp`` file that the next write ignores.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path


def _fsync_directory(folder: Path) -> None:
    # Not every platform can open a folder (Windows cannot); the rename is still atomic there.
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success move it over ``path`` atomically.

    Use it for writers that want a file name rather than a file object (h5py, ``np.savez``)::

        with atomic_path("model.h5") as tmp:
            write_everything_to(tmp)

    If the body raises, the temporary file is removed and ``path`` is untouched.
    """
    target = Path(path)
    folder = target.parent if str(target.parent) else Path(".")
    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=folder)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        # The writer may have closed the file already; fsync its bytes before the rename.
        with open(tmp, "rb+") as handle:
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
        _fsync_directory(folder)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "wb") -> Iterator:
    """Open a temporary file beside ``path`` for writing; rename it over ``path`` on success."""
    if "w" not in mode:
        raise ValueError(f"mode: expected a writing mode such as 'wb' or 'w', got {mode!r}")
    with atomic_path(path) as tmp, open(tmp, mode) as handle:
        yield handle
        handle.flush()
        os.fsync(handle.fileno())
