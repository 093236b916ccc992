"""Track IoUs (metric step 6) from exact intersections, and foreground run tables.

- :func:`track_ious` turns exact integer intersections and the tracks' total areas into
  float64 IoUs (``I / (area_d + area_g - I)``, 0 where the union is empty), jitted.
- :class:`RunTable` lists every frame's foreground runs ``[s, e)`` of column-major pixel
  positions (host, NumPy): the streaming evaluator gathers predictions at the ground truth's
  foreground pixels from it. The file path computes intersections from the masks' bytes
  instead (``cpu_kernels`` on the CPU, ``device_rle`` on a device).
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from ovis_jax._src.masks.rle import MaskTable
from ovis_jax._src.parallel import run_chunks

__all__ = ["RunTable", "track_ious"]


@dataclasses.dataclass(frozen=True, eq=False)
class RunTable:
    """Foreground runs of every frame of a :class:`~MaskTable` (host, NumPy).

    Attributes:
        start: int32[U] first pixel (column-major position) of each run within its frame.
        end: int32[U] one past the run's last pixel.
        frame_first: int64[F + 1] each frame's first run.
    """

    start: np.ndarray
    end: np.ndarray
    frame_first: np.ndarray

    @classmethod
    def from_masks(cls, masks: MaskTable) -> RunTable:
        """The foreground runs of ``masks`` (computed once per table, then cached on it).

        Frames are processed in chunks (one per thread and a few more) so that temporaries
        stay small next to the result.
        """
        cached = masks.__dict__.get("_run_table")
        if cached is not None:
            return cached
        rs = masks.run_start
        n_frames = rs.shape[0] - 1
        nfg = (rs[1:] - rs[:-1]) // 2  # runs alternate zero / one, starting with zero
        frame_first = np.zeros(n_frames + 1, dtype=np.int64)
        np.cumsum(nfg, out=frame_first[1:])
        total = int(frame_first[-1])
        start = np.empty(total, dtype=np.int32)
        end = np.empty(total, dtype=np.int32)
        # Chunks of frames write disjoint slices of the outputs: safe in parallel threads.
        run_chunks(
            lambda f0, f1: _fill_runs(masks.counts, rs, nfg, frame_first, f0, f1, start, end),
            n_frames,
            cost=nfg,
            min_cost=1 << 20,
            max_cost=1 << 20,
        )
        table = cls(start=start, end=end, frame_first=frame_first)
        object.__setattr__(masks, "_run_table", table)
        return table


def _fill_runs(counts, rs, nfg, frame_first, f0, f1, start, end) -> None:
    """Fills the :class:`RunTable` arrays for frames ``f0:f1``."""
    n = nfg[f0:f1]
    r0, r1 = int(frame_first[f0]), int(frame_first[f1])
    if r1 == r0:
        return
    first_of_frame = np.repeat(frame_first[f0:f1] - r0, n)
    idx = np.repeat(rs[f0:f1] + 1, n) + 2 * (np.arange(r1 - r0, dtype=np.int64) - first_of_frame)
    lo, hi = int(rs[f0]), int(rs[f1])
    csum = np.zeros(hi - lo + 1, dtype=np.int64)
    np.cumsum(counts[lo:hi], out=csum[1:])
    idx -= lo
    stop = csum[idx + 1] - np.repeat(csum[rs[f0:f1] - lo], n)
    end[r0:r1] = stop
    start[r0:r1] = stop - counts[lo:hi][idx]


@jax.jit
def track_ious(inter: jax.Array, area_d: jax.Array, area_g: jax.Array) -> jax.Array:
    """metric step 6: ``I / U`` in float64 with ``U = area_d + area_g - I``; 0 where ``U = 0``.

    Must be called under ``jax.enable_x64(True)``.

    Args:
        inter: int[...] intersections summed over frames.
        area_d, area_g: int[...] the tracks' total areas (broadcast against ``inter``).

    Returns:
        float64[...] IoUs.
    """
    inter = inter.astype(jnp.int64)
    union = area_d.astype(jnp.int64) + area_g.astype(jnp.int64) - inter
    safe = jnp.where(union > 0, union, 1)
    return jnp.where(union > 0, inter.astype(jnp.float64) / safe.astype(jnp.float64), 0.0)
