"""Whether numba's disk cache already holds the CPU kernels (the command line says "compiling"
on a first run). Apart from :mod:`startup`, which the kernel modules import, so that no import
circle forms."""

from __future__ import annotations

__all__ = ["kernels_cached"]


def kernels_cached() -> bool:
    """Whether numba's disk cache holds the CPU kernels for the current sources (best effort;
    True when it cannot tell)."""
    try:
        from ovis_jax._src.backends.cpu import kernels as cpu_kernels
        from ovis_jax._src.io import segjson
        from ovis_jax._src.masks import scan

        kernels = (
            segjson._walk_all,
            scan.scan_strings,
            cpu_kernels.group_intersections,
            cpu_kernels.match_groups,
            cpu_kernels.accumulate,
        )
        return all(k._cache._cache_file._load_index() for k in kernels)
    except Exception:  # private numba API: never let it break a command
        return True
