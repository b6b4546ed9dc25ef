"""Atomic file writes: a reader sees the old file or the new one, never half of either.

The recipe is the usual one: write a temporary file in the *same* folder (so the final
``os.replace`` is a rename within one file system, which POSIX makes atomic), flush and
``fsync`` it, rename it over the target, then ``fsync`` the folder so the rename itself
survives a power cut. A process killed at any moment leaves either the previous file intact
or the new one complete; at worst a stray ``.tmp`` file that the next write ignores.

A write that cannot complete (a full disk, a quota, a file-size limit such as ``ulimit -f``)
raises :class:`OSError` naming the target file (``error.filename``), removes the temporary
file and leaves the previous file as it was. Python ignores ``SIGXFSZ`` from startup, so a
file-size limit shows up as ``OSError(EFBIG)`` rather than killing the process; a program
that restored the default handler for ``SIGXFSZ`` would be killed by the kernel instead.
Writers that cannot report a failed write cleanly (HDF5 crashes when its file fills the
disk) build the file in memory and hand the bytes to :func:`atomic_write_bytes`.
"""

from __future__ import annotations

import contextlib
import io
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


def write_error(target, error: OSError) -> OSError:
    """``error`` restated as an OSError of the same errno that names ``target``."""
    reason = error.strerror or str(error)
    return OSError(error.errno, f"{reason}; could not write the file (any previous version "
                                f"is kept)", str(target))


class _TargetFileIO(io.FileIO):
    """The temporary file; a failed write raises OSError naming the *target* file."""

    def __init__(self, name, mode, target):
        super().__init__(name, mode)
        self.target = target

    def write(self, data):
        try:
            return super().write(data)
        except OSError as error:
            raise write_error(self.target, error) from None


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "wb") -> Iterator:
    """Open a temporary file beside ``path`` for writing; rename it over ``path`` on success.

    ``mode`` is ``'wb'`` (a binary file object) or ``'w'`` (text, UTF-8)::

        with atomic_open("results.json", "w") as handle:
            json.dump(document, handle)

    If the body raises, or a write, the flush or the ``fsync`` fails, the temporary file is
    removed and ``path`` is untouched; a failed write raises OSError naming ``path``.
    """
    if mode not in ("wb", "w"):
        raise ValueError(f"mode: expected 'wb' or 'w', got {mode!r}")
    target = Path(path)
    folder = target.parent if str(target.parent) else Path(".")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=folder)
    except OSError as error:
        raise write_error(target, error) from None
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        # mkstemp makes the file owner-only; give it the mode the file it replaces had, or
        # else the mode a plain open() would give it.
        os.chmod(tmp, _mode_for(target))
        raw = _TargetFileIO(tmp, "wb", target)
        handle = (io.BufferedWriter(raw) if mode == "wb"
                  else io.TextIOWrapper(io.BufferedWriter(raw), encoding="utf-8"))
        with handle:
            yield handle
            handle.flush()
            try:
                os.fsync(raw.fileno())
            except OSError as error:
                raise write_error(target, error) from None
        try:
            os.replace(tmp, target)
        except OSError as error:
            raise write_error(target, error) from None
        _fsync_directory(folder)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def atomic_write_bytes(path: str | os.PathLike, data) -> Path:
    """Write ``data`` (bytes-like) to ``path`` atomically; return the path."""
    with atomic_open(path, "wb") as handle:
        handle.write(memoryview(data))
    return Path(path)


def create_checked_dataset(group, name, data):
    """An HDF5 dataset with a Fletcher-32 checksum (arrays; HDF5 cannot chunk scalars).

    A flipped bit in a weight then fails to read (h5py raises OSError, reported as a damaged
    file) instead of loading a wrong number; HDF5 and Keras read such datasets transparently.
    """
    return group.create_dataset(name, data=data, fletcher32=np.ndim(data) > 0)
