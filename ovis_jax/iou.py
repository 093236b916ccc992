"""Track IoUs (SPEC step 6) from exact intersections, and foreground run tables.

- :func:`track_ious` turns exact integer intersections and the tracks' total areas into
  float64 IoUs (``I / (area_d + area_g - I)``, 0 where the union is empty), jitted.
- :class:`RunTable` lists every frame's foreground runs ``[s, e)`` of column-major pixel
  positions (host, NumPy): the streaming evaluator gathers predictions at the ground truth's
  foreground pixels from it. The file path computes intersections from the masks' bytes
  instead (:mod:`ovis_jax.cpu_kernels` on the CPU, :mod:`ovis_jax.device_rle` on a device).
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from ovis_jax.rle import MaskTable, parallel_map

__all__ = ["RunTable", "track_ious"]

_POSITION_MASK = np.int64((1 << 32) - 1)


@dataclasses.dataclass(frozen=True, eq=False)
class RunTable:
    """Foreground runs of every frame of a :class:`~ovis_jax.rle.MaskTable` (host, NumPy).

    Positions are keyed by frame, ``frame << 32 | position``, so that the runs of all frames
    form one sorted array that a single ``searchsorted`` serves (positions are < 2^31).

    Attributes:
        start_key: int64[runs] keyed first pixel (column-major position) of each run.
        end_key: int64[runs] keyed position one past the run's last pixel.
        before: int64[runs] foreground pixels of the same frame before the run.
        frame_first: int64[frames + 1] each frame's first run.
        top, bottom: int64[frames] first and last foreground row of each frame (empty
            frames: top > bottom).
    """

    start_key: np.ndarray
    end_key: np.ndarray
    before: np.ndarray
    frame_first: np.ndarray
    top: np.ndarray
    bottom: np.ndarray

    @classmethod
    def from_masks(cls, masks: MaskTable) -> RunTable:
        """The foreground runs of ``masks`` (computed once per table, then cached on it).

        Frames are processed in chunks so that temporaries stay small next to the result.
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
        frames_per_track = masks.frame_start[1:] - masks.frame_start[:-1]
        frame_h = np.repeat(masks.height, frames_per_track)
        start_key = np.empty(total, dtype=np.int64)
        end_key = np.empty(total, dtype=np.int64)
        before = np.empty(total, dtype=np.int64)
        top = np.full(n_frames, np.iinfo(np.int64).max, dtype=np.int64)
        bottom = np.full(n_frames, -1, dtype=np.int64)
        chunks = []
        f0 = 0
        while f0 < n_frames:
            f1 = int(np.searchsorted(frame_first, frame_first[f0] + (1 << 20), side="right"))
            f1 = min(max(f1 - 1, f0 + 1), n_frames)
            chunks.append((f0, f1))
            f0 = f1
        # Chunks write disjoint slices of the outputs: safe in parallel threads.
        parallel_map(
            lambda c: _fill_runs(
                masks.counts, rs, nfg, frame_first, frame_h, c[0], c[1],
                start_key, end_key, before, top, bottom,
            ),
            chunks,
        )  # fmt: skip
        table = cls(
            start_key=start_key,
            end_key=end_key,
            before=before,
            frame_first=frame_first,
            top=top,
            bottom=bottom,
        )
        object.__setattr__(masks, "_run_table", table)
        return table

    @property
    def start(self) -> np.ndarray:
        """int32[runs] first pixel of each run within its frame."""
        return (self.start_key & _POSITION_MASK).astype(np.int32)

    @property
    def end(self) -> np.ndarray:
        """int32[runs] one past the last pixel of each run within its frame."""
        return (self.end_key & _POSITION_MASK).astype(np.int32)

    def spans(self) -> tuple[np.ndarray, np.ndarray]:
        """Per frame, ``(first, last)`` foreground position span; (0, 0) for empty frames."""
        n = self.frame_first[1:] - self.frame_first[:-1]
        has = n > 0
        first = np.zeros(n.shape[0], dtype=np.int64)
        last = np.zeros(n.shape[0], dtype=np.int64)
        first[has] = self.start_key[self.frame_first[:-1][has]] & _POSITION_MASK
        last[has] = self.end_key[self.frame_first[1:][has] - 1] & _POSITION_MASK
        return first, last


def _fill_runs(counts, rs, nfg, frame_first, frame_h, f0, f1, start_key, end_key, before, top,
               bottom) -> None:  # fmt: skip
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
    fg_len = counts[lo:hi][idx].astype(np.int64)
    end = csum[idx + 1] - np.repeat(csum[rs[f0:f1] - lo], n)
    start = end - fg_len
    owner = np.repeat(np.arange(f0, f1, dtype=np.int64) << np.int64(32), n)
    start_key[r0:r1] = owner | start
    end_key[r0:r1] = owner | end
    np.cumsum(fg_len, out=before[r0:r1])
    before[r0:r1] -= fg_len  # exclusive prefix over the chunk ...
    before[r0:r1] -= before[r0:r1][first_of_frame]  # ... restarted at each frame
    # Row range of each frame's foreground (a run that crosses a column covers all rows).
    h = np.repeat(frame_h[f0:f1], n)
    crosses = (end - 1) // h != start // h
    real = fg_len > 0
    row0 = np.where(real, np.where(crosses, 0, start % h), np.iinfo(np.int64).max)
    row1 = np.where(real, np.where(crosses, h - 1, (end - 1) % h), -1)
    has = np.flatnonzero(n > 0)
    heads = frame_first[f0:f1][has] - r0
    top[f0 + has] = np.minimum.reduceat(row0, heads)
    bottom[f0 + has] = np.maximum.reduceat(row1, heads)


@jax.jit
def track_ious(inter: jax.Array, area_d: jax.Array, area_g: jax.Array) -> jax.Array:
    """SPEC step 6: ``I / U`` in float64 with ``U = area_d + area_g - I``; 0 where ``U = 0``.

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
