"""Find, download, verify and safely read the dataset files.

Where a file comes from, first match wins:

1. the ``path`` argument, when it names a file that exists;
2. the folder named by the environment variable ``NPRNN_DATA_DIR`` (local copies);
3. the cache folder: ``NPRNN_CACHE_DIR``, by default ``~/.nprnn/datasets``;
4. Keras' own cache, ``~/.keras/datasets`` (or ``$KERAS_HOME/datasets``), read in place;
5. a download from the canonical Keras URL into the cache folder.

Trust: a file is identified by its sha256. Files the user named (1 and 2) may have any
hash; an unknown one only earns an :class:`UnverifiedFileWarning`. Files we found on our
own (3 and 4) must have a known hash, otherwise it is an error: a cache that silently
holds the wrong bytes is worse than no cache (this is checked here, before pooch is asked,
because pooch would quietly download over such a file).

Downloads (5) are done by `pooch <https://www.fatiando.org/pooch/>`_, the fetcher SciPy and
scikit-image use: it streams into a temporary file beside the target, checks the sha256 the
URL is known to serve (the first hash of the :class:`RemoteFile`) and only then moves the
file into the cache, so a failed, interrupted or tampered download never poisons it. This
module only turns pooch's errors into the ones nprnn documents.

Safety of ``.npz`` files: IMDB stores each review as a Python list, so ``imdb.npz`` holds
*object* arrays, which NumPy can only read by unpickling (``np.load(...,
allow_pickle=True)``), and unpickling runs whatever callables the file names. This module
never calls ``np.load`` with pickles allowed: it opens the zip itself, reads each ``.npy``
header with :mod:`numpy.lib.format`, and feeds object payloads to an unpickler whose
``find_class`` admits only what an object array of integer lists needs (NumPy's array
reconstructor, ``ndarray``, ``dtype``, ``list`` and ``int``). Anything else is refused
before it is called.
"""

from __future__ import annotations

import math
import os
import pickle
import warnings
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pooch
from numpy.lib import format as npy_format

DATA_DIR_ENV = "NPRNN_DATA_DIR"
CACHE_DIR_ENV = "NPRNN_CACHE_DIR"
KERAS_ORIGIN = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/"

# pooch's HTTP downloader (requests underneath). Tests replace it to simulate the network;
# any callable ``(url, output_file, pooch)`` that writes the bytes to ``output_file`` fits.
_downloader = pooch.HTTPDownloader(progressbar=False, timeout=60)


class DatasetNotFoundError(FileNotFoundError):
    """No local copy of a dataset file exists and it could not be downloaded."""


class DatasetFileError(ValueError):
    """A dataset file exists but is not what it should be (hash, format or content)."""


class HashMismatchError(DatasetFileError):
    """A cached or downloaded file does not have one of the known sha256 hashes."""


class UnsafeFileError(DatasetFileError):
    """A pickled payload asked for something an array of integer lists never needs."""


class UnverifiedFileWarning(UserWarning):
    """A file the user named explicitly has a hash we do not know; it is used anyway."""


@dataclass(frozen=True)
class RemoteFile:
    """A dataset file: its usual name, where to download it and its known-good hashes.

    Parameters
    ----------
    name : str
        File name in the cache and in ``NPRNN_DATA_DIR``, e.g. ``'imdb.npz'``.
    url : str
        Canonical download address.
    sha256 : tuple of str
        Hex digests of copies we trust. The first is the one ``url`` serves (a download
        must match it); the others are faithful rebuilds (same arrays, different zip
        bytes), accepted in the caches.
    """

    name: str
    url: str
    sha256: tuple[str, ...]


def cache_dir() -> Path:
    """The cache folder: ``$NPRNN_CACHE_DIR`` or ``~/.nprnn/datasets``.

    Read at each call (not at import) so that changing the environment takes effect.
    """
    configured = os.environ.get(CACHE_DIR_ENV)
    if configured:
        return Path(configured).expanduser()
    return Path.home() / ".nprnn" / "datasets"


def keras_cache_dir() -> Path:
    """Keras' dataset cache: ``$KERAS_HOME/datasets`` or ``~/.keras/datasets``."""
    keras_home = os.environ.get("KERAS_HOME")
    base = Path(keras_home).expanduser() if keras_home else Path.home() / ".keras"
    return base / "datasets"


def locate(path: str | os.PathLike, remote: RemoteFile) -> Path:
    """Find a local copy of ``remote`` (or download it) and return its path.

    Parameters
    ----------
    path : str or os.PathLike
        Either a path to an existing file, used as is, or a bare file name (such as the
        default ``'imdb.npz'``) looked up in ``NPRNN_DATA_DIR``, the cache folder and
        Keras' cache, and downloaded into the cache folder under that name if absent.
    remote : RemoteFile
        What the file should be: download address and known hashes.

    Returns
    -------
    pathlib.Path
        A file whose hash was checked as described in the module docstring.

    Raises
    ------
    TypeError
        If ``path`` is not a string or path-like.
    FileNotFoundError
        If ``path`` has a folder part but names no file (a typo should not trigger a
        download), or ``NPRNN_DATA_DIR`` names no folder.
    HashMismatchError
        If a cached copy or a download does not have a known hash.
    DatasetNotFoundError
        If there is no local copy and the download fails.
    """
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(
            f"path: expected a file path or file name (str or os.PathLike), "
            f"got {type(path).__name__} {path!r}"
        )
    requested = Path(path).expanduser()
    if requested.is_file():
        return _accept_named_file(requested, remote, "the path argument")
    if len(requested.parts) != 1 or requested.name != os.fspath(path):
        raise FileNotFoundError(
            f"path: expected an existing file, or a bare file name such as "
            f"{remote.name!r} to look up in {DATA_DIR_ENV}, the cache and downloads; "
            f"got {os.fspath(path)!r}, which is not a file"
        )
    name = requested.name

    data_dir = os.environ.get(DATA_DIR_ENV)
    if data_dir:
        folder = Path(data_dir).expanduser()
        if not folder.is_dir():
            raise FileNotFoundError(
                f"{DATA_DIR_ENV}: expected a folder holding local copies such as "
                f"{remote.name!r}, got {data_dir!r}, which is not a folder"
            )
        if (folder / name).is_file():
            return _accept_named_file(folder / name, remote, DATA_DIR_ENV)

    for folder in (cache_dir(), keras_cache_dir()):
        if (folder / name).is_file():
            return _accept_cached_file(folder / name, remote)

    return download(remote, cache_dir() / name)


def _accept_named_file(path: Path, remote: RemoteFile, named_by: str) -> Path:
    # The user chose this file, so an unknown hash (their own rebuild, a trimmed copy for
    # a class) is their call; we still say so, and the restricted unpickler still applies.
    digest = pooch.file_hash(str(path))
    if digest not in remote.sha256:
        warnings.warn(
            f"{path} (named by {named_by}) has sha256 {digest}, which matches no known "
            f"copy of {remote.name} ({', '.join(remote.sha256)}); using it because you "
            "named it explicitly.",
            UnverifiedFileWarning,
            stacklevel=4,
        )
    return path


def _accept_cached_file(path: Path, remote: RemoteFile) -> Path:
    digest = pooch.file_hash(str(path))
    if digest not in remote.sha256:
        raise HashMismatchError(
            f"cached file {path} has sha256 {digest}, expected one of "
            f"{', '.join(remote.sha256)}: it is damaged or not {remote.name}. Delete it "
            f"(it will be downloaded again), or set {DATA_DIR_ENV} to a folder holding a "
            "copy you trust."
        )
    return path


def download(remote: RemoteFile, target: Path) -> Path:
    """Download ``remote.url`` to ``target`` with pooch, verifying its sha256 first.

    pooch streams the bytes into a temporary file beside ``target``, checks the hash the
    URL serves (``remote.sha256[0]``) and only then moves the file to ``target``. On any
    failure (network error, interruption, wrong hash) the temporary file is deleted and
    ``target`` is left as it was.

    Parameters
    ----------
    remote : RemoteFile
        What to download and which hash to expect.
    target : pathlib.Path
        Final location, normally inside :func:`cache_dir`.

    Returns
    -------
    pathlib.Path
        ``target``.
    """
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise DatasetNotFoundError(
            f"cannot create the cache folder {target.parent} ({error}); set "
            f"{CACHE_DIR_ENV} to a writable folder or {DATA_DIR_ENV} to a folder holding "
            f"{remote.name}"
        ) from error
    try:
        pooch.retrieve(
            remote.url,
            known_hash=f"sha256:{remote.sha256[0]}",
            fname=target.name,
            path=target.parent,
            downloader=_downloader,
        )
    except ValueError as error:  # pooch's only ValueError here: the hash did not match
        raise HashMismatchError(
            f"the download of {remote.url} is not the file expected ({error}): it was "
            "corrupted in transit or the file on the server changed. Nothing was stored "
            f"in {target.parent}."
        ) from error
    except OSError as error:  # requests' errors and URLError are OSErrors
        raise DatasetNotFoundError(_not_found_message(remote, target, error)) from error
    return target


def _not_found_message(remote: RemoteFile, target: Path, error: BaseException) -> str:
    data_dir = os.environ.get(DATA_DIR_ENV)
    data_dir_state = f"currently {data_dir!r}" if data_dir else "currently unset"
    return (
        f"could not get {remote.name}: no local copy was found and downloading "
        f"{remote.url} failed ({type(error).__name__}: {error}); nothing was stored in "
        f"the cache.\nTo work offline, download {remote.url} by other means "
        f"(sha256 {remote.sha256[0]}) and either\n"
        f"  - put it in a folder and set the environment variable {DATA_DIR_ENV} to "
        f"that folder ({data_dir_state}), or\n"
        f"  - put it in the cache folder as {target} (set {CACHE_DIR_ENV} to move the "
        "cache), or\n"
        f"  - pass its location as the path argument, e.g. path='/data/{remote.name}'."
    )


# --------------------------------------------------------------------------------------
# Reading .npz archives without trusting their pickles.

# NumPy pickles an ndarray as a call to its C reconstructor; take the function from
# ndarray.__reduce__ rather than importing it by its private, version-dependent name.
_ARRAY_RECONSTRUCTOR = np.empty(0, dtype=object).__reduce__()[0]


class _CheckedArray(np.ndarray):
    """What the restricted unpickler builds for ``numpy.ndarray``: its ``__setstate__``
    checks that the pickled shape matches the data it carries before NumPy copies it (NumPy
    itself crashes on an object array whose list is shorter than its shape)."""

    def __setstate__(self, state):
        if not isinstance(state, tuple) or len(state) not in (4, 5):
            raise UnsafeFileError(f"an ndarray state of {type(state).__name__}, not a tuple")
        shape, dtype, _, data = state[-4:]
        if (not isinstance(shape, tuple) or not all(type(n) is int and n >= 0 for n in shape)
                or not isinstance(dtype, np.dtype)):
            raise UnsafeFileError(f"an ndarray state with shape {shape!r}, dtype {dtype!r}")
        count = math.prod(shape)
        if dtype.hasobject:
            ok = type(data) is list and len(data) == count
        else:
            ok = isinstance(data, bytes) and len(data) == count * dtype.itemsize
        if not ok:
            raise UnsafeFileError(f"an ndarray of shape {shape} and {dtype} whose data holds "
                                  f"{len(data) if hasattr(data, '__len__') else '?'} items")
        super().__setstate__(state)


# Spelled as they appear in pickle streams written by different NumPy and Python versions.
# NumPy wrote object arrays with pickle protocol 2 until 1.16; under Python 3 that protocol
# stores bytes (such as ndarray's b'b' reconstruct argument) as _codecs.encode(text,
# 'latin1'), so that one call is admitted too, but only in a latin-1-only stand-in.
_LATIN1_ENCODE = ("_codecs", "encode")
_ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"): _ARRAY_RECONSTRUCTOR,  # NumPy 1.x writers
    ("numpy._core.multiarray", "_reconstruct"): _ARRAY_RECONSTRUCTOR,  # NumPy 2.x writers
    ("numpy", "ndarray"): _CheckedArray,
    ("numpy", "dtype"): np.dtype,
    ("builtins", "list"): list,
    ("builtins", "int"): int,
    ("__builtin__", "list"): list,  # Python 2 writers
    ("__builtin__", "int"): int,
    ("__builtin__", "long"): int,
}


class _RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that resolves only the globals in ``_ALLOWED_GLOBALS``.

    Every callable a pickle can invoke has to be fetched through ``find_class`` first
    (GLOBAL, STACK_GLOBAL and EXT opcodes all go through it), so refusing here stops
    a hostile file before anything runs.
    """

    def __init__(self, stream, source: str) -> None:
        # Same decoding options np.load uses by default, so Python 2 era files still read.
        super().__init__(stream, encoding="ASCII", fix_imports=True)
        self._source = source

    def find_class(self, module: str, name: str):
        if (module, name) == _LATIN1_ENCODE:
            return self._latin1_encode
        try:
            return _ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            allowed = ", ".join(
                sorted({f"{m}.{n}" for m, n in (*_ALLOWED_GLOBALS, _LATIN1_ENCODE)})
            )
            raise UnsafeFileError(
                f"{self._source}: the pickled data asks for {module}.{name}, which an "
                "array of integer lists never needs; refusing to load it (nothing from "
                f"the file was run). Admitted: {allowed}. If you built this file "
                "yourself, store each sequence as a list of Python ints."
            ) from None

    def _latin1_encode(self, text, encoding="utf-8", errors="strict"):
        # Stand-in for _codecs.encode: protocol-2 pickles only ever call it this way.
        if type(text) is not str or encoding not in ("latin1", "latin-1") or errors != "strict":
            raise UnsafeFileError(
                f"{self._source}: the pickled data calls _codecs.encode with "
                f"encoding={encoding!r}; only the latin-1 encoding of protocol-2 bytes is "
                "admitted; refusing to load it"
            )
        return text.encode("latin-1")

    def persistent_load(self, pid):
        raise UnsafeFileError(
            f"{self._source}: the pickled data uses persistent ids, which .npy files "
            "never contain; refusing to load it"
        )


def load_npz(path: str | os.PathLike, keys: Iterable[str]) -> dict[str, np.ndarray]:
    """Read named arrays from an ``.npz`` archive, unpickling object arrays safely.

    Equivalent to ``np.load(path, allow_pickle=True)[key]`` for well-formed files, but
    object arrays go through a restricted unpickler (see the module docstring), so a
    hostile file raises :class:`UnsafeFileError` instead of running code.

    Parameters
    ----------
    path : str or os.PathLike
        The ``.npz`` file (a zip of ``.npy`` members).
    keys : iterable of str
        Array names to read (member ``key + '.npy'``); other members are ignored.

    Returns
    -------
    dict of str to numpy.ndarray

    Raises
    ------
    DatasetFileError
        If the file is not a zip, lacks a key, or a member is not a valid ``.npy``.
    UnsafeFileError
        If an object array's pickle asks for anything outside the allowlist.
    """
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as error:
        raise DatasetFileError(f"{path}: expected an .npz (zip) archive, {error}") from error
    arrays = {}
    with archive:
        members = set(archive.namelist())
        for key in keys:
            member = f"{key}.npy"
            if member not in members:
                raise DatasetFileError(
                    f"{path}: expected an array named {key!r} (member {member}); the "
                    f"archive holds {sorted(members)}"
                )
            arrays[key] = _read_npy_member(archive, member, f"{path} ({member})")
    return arrays


def _read_npy_member(archive: zipfile.ZipFile, member: str, source: str) -> np.ndarray:
    try:
        with archive.open(member) as stream:
            version = npy_format.read_magic(stream)
            if version == (1, 0):
                shape, fortran_order, dtype = npy_format.read_array_header_1_0(stream)
            elif version == (2, 0):
                shape, fortran_order, dtype = npy_format.read_array_header_2_0(stream)
            else:
                # Version 3.0 only adds UTF-8 field names of structured dtypes.
                raise DatasetFileError(
                    f"{source}: .npy format version {version} is not supported here "
                    "(expected 1.0 or 2.0)"
                )
            _check_declared_size(archive.getinfo(member), stream.tell(), shape, dtype, source)
            if dtype.hasobject:
                return _unpickle_object_array(stream, source, shape)
    except DatasetFileError:
        raise
    except (ValueError, EOFError, zipfile.BadZipFile) as error:
        raise DatasetFileError(f"{source}: not a valid .npy array ({error})") from error
    # Plain numeric data: NumPy's own reader, with pickles forbidden.
    with archive.open(member) as stream:
        try:
            return npy_format.read_array(stream, allow_pickle=False)
        except (ValueError, EOFError) as error:
            raise DatasetFileError(f"{source}: not a valid .npy array ({error})") from error


MAX_MEMBER_BYTES = 1 << 30
"""The largest ``.npy`` member (uncompressed) :func:`load_npz` reads: 1 GiB. Each array of
``imdb.npz`` takes under 15 MB; a larger declared size is a damaged or hostile file."""


def _check_declared_size(info: zipfile.ZipInfo, offset: int, shape, dtype, source: str) -> None:
    """Refuse a member whose header declares more data than its zip entry holds, or a zip
    entry above :data:`MAX_MEMBER_BYTES`, before any data is read (a zip bomb a few MB long
    can declare gigabytes)."""
    if info.file_size > MAX_MEMBER_BYTES:
        raise DatasetFileError(
            f"{source}: the archive declares {info.file_size:,} bytes for this array, above "
            f"the limit of {MAX_MEMBER_BYTES:,}; refusing to read it"
        )
    count = math.prod(shape)
    stored = info.file_size - offset
    # A pickled object takes at least one byte per item; numbers take exactly itemsize.
    needed = count if dtype.hasobject else count * dtype.itemsize
    if needed > stored or (not dtype.hasobject and needed != stored):
        raise DatasetFileError(
            f"{source}: the header declares shape {tuple(shape)} of {dtype} ({needed:,} "
            f"bytes), the archive holds {stored:,} bytes of data; refusing to read it"
        )


def _unpickle_object_array(stream, source: str, shape: tuple[int, ...]) -> np.ndarray:
    try:
        array = _RestrictedUnpickler(stream, source).load()
        if isinstance(array, _CheckedArray):
            array = array.view(np.ndarray)
    except UnsafeFileError as error:
        if str(error).startswith(source):
            raise
        raise UnsafeFileError(f"{source}: the pickled data builds {error}; refusing it") \
            from None
    except Exception as error:  # a corrupt pickle can fail in many ways; name the file
        raise DatasetFileError(
            f"{source}: could not read the pickled object array ({type(error).__name__}: {error})"
        ) from error
    if type(array) is not np.ndarray or array.shape != tuple(shape):
        raise DatasetFileError(
            f"{source}: expected an object array of shape {tuple(shape)}, the pickle held "
            f"{type(array).__name__} of shape {getattr(array, 'shape', '?')}"
        )
    if array.dtype != object:
        raise DatasetFileError(
            f"{source}: the header promises an object array, the pickle held dtype {array.dtype}"
        )
    return array
