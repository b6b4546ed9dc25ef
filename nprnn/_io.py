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
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np


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


def _mode_for(target: Path) -> int:
    """The permission bits for ``target``: its current ones, or 0o666 minus the umask."""
    try:
        return stat.S_IMODE(target.stat().st_mode)
    except OSError:
        umask = os.umask(0)  # the only portable way to read the umask is to set it
        os.umask(umask)
        return 0o666 & ~umask


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
    # mkstemp makes the file owner-only; give it the mode the file it replaces had, or
    # else the mode a plain open() would give it.
    os.chmod(tmp, _mode_for(target))
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


def create_checked_dataset(group, name, data):
    """An HDF5 dataset with a Fletcher-32 checksum (arrays; HDF5 cannot chunk scalars).

    A flipped bit in a weight then fails to read (h5py raises OSError, reported as a damaged
    file) instead of loading a wrong number; HDF5 and Keras read such datasets transparently.
    """
    return group.create_dataset(name, data=data, fletcher32=np.ndim(data) > 0)
