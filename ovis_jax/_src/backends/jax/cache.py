"""JAX's persistent compilation cache for the command line: an optimisation, never a
precondition.

The library never changes JAX's configuration; a command (which owns its process) calls
:func:`enable_compilation_cache` before the ``jax`` backend compiles. A folder that cannot be
created or written falls back to a per-user folder in the temporary directory, and, where that
fails too, to no cache, with one ``warning:`` log record; JAX's own warnings about cache
entries it cannot read or write (nine raw ``UserWarning`` blocks for an unwritable folder) are
silenced, since the evaluation is unaffected.
"""

from __future__ import annotations

import logging
import os
import tempfile
import warnings

__all__ = ["default_cache_dir", "enable_compilation_cache", "writable_dir"]

logger = logging.getLogger(__name__)

#: JAX's warnings about cache entries (the computation runs all the same).
_JAX_CACHE_WARNINGS = r"Error (reading|writing) persistent compilation cache entry"


def default_cache_dir() -> str:
    """``$OVIS_JAX_CACHE``, else ``~/.cache/ovis_jax/xla`` (the temporary fallback when there is
    no home)."""
    if os.environ.get("OVIS_JAX_CACHE"):
        return os.environ["OVIS_JAX_CACHE"]
    home = os.path.expanduser("~")
    if home in ("~", "", "/"):
        return _fallback_dir()
    return os.path.join(home, ".cache", "ovis_jax", "xla")


def _fallback_dir() -> str:
    uid = os.getuid() if hasattr(os, "getuid") else "user"
    return os.path.join(tempfile.gettempdir(), f"ovis_jax-xla-cache-{uid}")


def writable_dir(path: str) -> str | None:
    """Creates ``path`` if needed and proves it writable (a temporary file); the reason it is
    not, else None."""
    try:
        os.makedirs(path, exist_ok=True)
        tempfile.TemporaryFile(dir=path).close()
    except OSError as e:
        return e.strerror or str(e)
    return None


def enable_compilation_cache(cache_dir: str) -> str | None:
    """Turns on JAX's persistent compilation cache in ``cache_dir`` (or the fallback).

    Returns:
        The folder used, or None when no writable folder was found (no cache).
    """
    import jax

    chosen = None
    why = writable_dir(cache_dir)
    if why is None:
        chosen = cache_dir
    elif writable_dir(_fallback_dir()) is None:
        logger.info("compilation cache %s unusable (%s): using %s", cache_dir, why, _fallback_dir())
        chosen = _fallback_dir()
    else:
        logger.warning(
            f"cannot use the compilation cache {cache_dir} ({why}); compiling without a cache"
        )
        return None
    warnings.filterwarnings("ignore", message=_JAX_CACHE_WARNINGS, category=UserWarning)
    jax.config.update("jax_compilation_cache_dir", chosen)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    return chosen
