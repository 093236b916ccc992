"""Starting numba in any environment: its disk cache is an optimisation, never a precondition.

The modules that define compiled kernels (``masks/scan.py``, ``backends/cpu/kernels.py``,
``io/segjson.py``) call :func:`prepare_numba` before their ``cache=True`` decorators run, because
numba chooses a function's cache folder when the function is defined. :func:`prepare_numba`
(idempotent, cheap):

- adds two last-resort cache locators after numba's own (the package's ``__pycache__``, then
  ``$NUMBA_CACHE_DIR``, then the user's cache folder under ``$HOME``): a per-user folder in the
  temporary directory, and, where nothing is writable, none at all (the kernels are then
  compiled in every process). Without them numba refuses to define the kernels ("cannot cache
  function ...: no locator available") when run by a user with no writable home;
- makes loading and saving the kernels' cache entries tolerant: every ``.nbi`` / ``.nbc`` file
  of ovis_jax is sealed with a SHA-256 digest of its contents (numba has no integrity check:
  a flipped bit in a data file that still unpickles is machine code that crashes the process);
  a file that is truncated, damaged or unsealed is deleted and the kernel compiled again (and
  saved anew); a cache that cannot be written (disk full, read-only) is skipped with one
  ``warning:`` log record.

Only ovis_jax's own functions are affected; numba's behaviour for other code is unchanged.
This is the only module that touches numba's private caching API.

:func:`start_numba` (for the command line) initialises numba without its BLAS probe;
:func:`ovis_jax._src.backends.cpu.cached.kernels_cached` says whether the CPU kernels are in
the cache already (a module of its own: it imports the kernels, which import this one).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib.abc
import io
import logging
import os
import pickle
import sys
import tempfile

__all__ = ["prepare_numba", "start_numba"]

logger = logging.getLogger(__name__)

_warned = False


def _ours(py_func) -> bool:
    return getattr(py_func, "__module__", "").startswith("ovis_jax.")


def _warn_once(message: str) -> None:
    global _warned
    if not _warned:
        _warned = True
        logger.warning(message)


def fallback_cache_dir() -> str:
    """The per-user folder in the temporary directory used when no usual place is writable."""
    uid = os.getuid() if hasattr(os, "getuid") else "user"
    return os.path.join(tempfile.gettempdir(), f"ovis_jax-numba-cache-{uid}")


@functools.cache
def prepare_numba() -> None:
    """Makes numba's disk cache optional for the kernels defined after this call (see the
    module docstring). Call it before ``numba.njit(cache=True)`` decorators run."""
    from numba.core import caching

    caching.CacheImpl._locator_classes = [*caching.CacheImpl._locator_classes, *_locators()]
    _make_tolerant(caching.Cache, _checked_cache_file(caching.IndexDataCacheFile))


#: The first bytes of a sealed cache file, then the SHA-256 digest of the rest.
_SEAL = b"ovis_jax-sealed-1\n"


def _seal(payload: bytes) -> bytes:
    return _SEAL + hashlib.sha256(payload).digest() + payload


def _unseal(raw: bytes, path: str) -> bytes:
    n = len(_SEAL)
    payload = raw[n + 32 :]
    if raw[:n] != _SEAL or hashlib.sha256(payload).digest() != raw[n : n + 32]:
        raise ValueError(f"{path}: damaged or not sealed by ovis_jax")
    return payload


def _checked_cache_file(base: type) -> type:
    """numba's index / data file pair, each file sealed with a digest (for ovis_jax only);
    ``NUMBA_DEBUG_CACHE=1`` logs as numba does."""
    from numba.core.caching import _cache_log

    class CheckedCacheFile(base):
        def _save_index(self, overloads):
            payload = pickle.dumps(self._version, protocol=-1)
            payload += self._dump((self._source_stamp, overloads))
            with self._open_for_write(self._index_path) as f:
                f.write(_seal(payload))
            _cache_log("[cache] index saved to %r", self._index_path)

        def _load_index(self):
            try:
                with open(self._index_path, "rb") as f:
                    raw = f.read()
            except FileNotFoundError:
                return {}
            stream = io.BytesIO(_unseal(raw, self._index_path))
            if pickle.load(stream) != self._version:
                return {}
            stamp, overloads = pickle.loads(stream.read())
            _cache_log("[cache] index loaded from %r", self._index_path)
            return overloads if stamp == self._source_stamp else {}

        def _save_data(self, name, data):
            with self._open_for_write(self._data_path(name)) as f:
                f.write(_seal(self._dump(data)))
            _cache_log("[cache] data saved to %r", self._data_path(name))

        def _load_data(self, name):
            path = self._data_path(name)
            with open(path, "rb") as f:
                raw = f.read()
            data = pickle.loads(_unseal(raw, path))
            _cache_log("[cache] data loaded from %r", path)
            return data

    return CheckedCacheFile


def _locators() -> tuple[type, ...]:
    from numba.core import caching

    class TempDirLocator(caching.UserProvidedCacheLocator):
        """A per-user folder in the temporary directory, for ovis_jax's kernels only."""

        def __init__(self, py_func, py_file):
            super().__init__(py_func, py_file)
            self._cache_path = os.path.join(
                fallback_cache_dir(), self.get_suitable_cache_subpath(py_file)
            )

        @classmethod
        def from_function(cls, py_func, py_file):
            if not _ours(py_func):
                return None
            # numba's check (source exists, folder writable), without UserProvided's CACHE_DIR test
            return super(caching.UserProvidedCacheLocator, cls).from_function(py_func, py_file)

    class NoCacheLocator(TempDirLocator):
        """Nowhere writable: a cache path that is never written (saving is skipped with a
        warning, loading finds nothing)."""

        def ensure_cache_path(self):
            raise OSError(f"no writable folder for numba's cache (tried {fallback_cache_dir()})")

        @classmethod
        def from_function(cls, py_func, py_file):
            if not _ours(py_func) or not os.path.exists(py_file):
                return None
            return cls(py_func, py_file)

    return TempDirLocator, NoCacheLocator


def _make_tolerant(cache_class, checked_file: type) -> None:
    """Wraps numba's Cache (once) so that for ovis_jax's functions the files are sealed
    (``checked_file``) and a broken cache is a cache miss, never an error."""
    if getattr(cache_class, "_ovis_jax_tolerant", False):
        return
    init, load, save = cache_class.__init__, cache_class.load_overload, cache_class.save_overload

    def __init__(self, py_func):
        init(self, py_func)
        if _ours(py_func):
            self._cache_file.__class__ = checked_file

    def load_overload(self, sig, target_context):
        if not _ours(self._py_func):
            return load(self, sig, target_context)
        try:
            return load(self, sig, target_context)
        except Exception as e:  # a corrupt entry: forget it, compile again, save anew
            logger.info("numba cache entry of %s unreadable (%s): compiling again", self._name, e)
            _forget(self)
            return None

    def save_overload(self, sig, data):
        if not _ours(self._py_func):
            return save(self, sig, data)
        try:
            return save(self, sig, data)
        except Exception as e:
            if isinstance(e, OSError):
                why = e.strerror or str(e)
                where = getattr(e, "filename", None) or self.cache_path
            else:  # e.g. an index that became unreadable since it was loaded
                why, where = str(e), self.cache_path
                _forget(self)
            _warn_once(
                f"cannot write numba's cache in {where} ({why}); the CPU kernels work but are "
                "compiled again by the next process"
            )
            return None

    cache_class.__init__ = __init__
    cache_class.load_overload = load_overload
    cache_class.save_overload = save_overload
    cache_class._ovis_jax_tolerant = True


def _forget(cache) -> None:
    """Deletes a function's cache index and data files (they are rebuilt on the next save)."""
    index = cache._cache_file._index_path
    base = os.path.basename(index)[: -len(".nbi")]
    folder = os.path.dirname(index)
    with contextlib.suppress(OSError):
        for name in os.listdir(folder):
            if name == base + ".nbi" or (name.startswith(base + ".") and name.endswith(".nbc")):
                with contextlib.suppress(OSError):
                    os.remove(os.path.join(folder, name))


class _NoScipyLinalg(importlib.abc.MetaPathFinder):
    """Refuses ``scipy.linalg`` imports (see :func:`start_numba`)."""

    def find_spec(self, name, path=None, target=None):
        if name == "scipy.linalg" or name.startswith("scipy.linalg."):
            raise ImportError("not needed by ovis_jax's kernels")
        return None


def start_numba() -> None:
    """Initialises numba without its BLAS probe (for the command line, which owns its process).

    On first use numba imports ``numba.np.arraymath``, which imports ``scipy.linalg`` only to
    learn whether ``np.dot`` / ``np.linalg`` can be compiled; that import is 0.15-0.35 s of a
    CLI run (measured) and none of ovis_jax's kernels uses linear algebra. So numba is allowed
    to find no BLAS (only numba's own ``np.linalg`` support is off in this process;
    ``scipy.linalg`` itself imports normally afterwards).
    """
    if "numba.np.arraymath" in sys.modules or "scipy.linalg" in sys.modules:
        return
    finder = _NoScipyLinalg()
    sys.meta_path.insert(0, finder)
    try:
        import numba.np.arraymath  # noqa: F401
    finally:
        sys.meta_path.remove(finder)
