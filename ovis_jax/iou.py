"""Track-pair intersections and IoUs (SPEC step 6) as JIT-compiled kernels.

Two mask representations, one interface: both kernels return exact integer intersections per
(result, ground truth) pair, summed over frames; :func:`track_ious` turns them, with the tracks'
total areas, into float64 IoUs (``I / (area_d + area_g - I)``, 0 where the union is empty).

- Run-length input (files): each frame's foreground is a sorted list of runs ``[s, e)`` of
  column-major pixel positions. For a query frame ``a`` and a base frame ``b``,
  ``|a ∩ b| = Σ_runs of a  C_b(e) - C_b(s)`` where ``C_b(x)`` is the number of foreground pixels
  of ``b`` before position ``x``, found by a binary search in ``b``'s runs. The work is
  proportional to the number of runs, not pixels: a 1080p frame has ~2·10^6 pixels but a mask a
  few hundred runs.
- Dense input (training loops): :mod:`ovis_jax.streaming` gathers the predicted masks at the
  ground truth's foreground pixel positions on device (exact int32 counts) and hands the
  intersections to the same back half (:func:`ovis_jax.backend.evaluate_tracks`).
"""

from __future__ import annotations

import dataclasses
import functools
import itertools

import jax
import jax.numpy as jnp
import numpy as np

from ovis_jax.rle import MaskTable, parallel_map

__all__ = [
    "RunTable",
    "pair_frames",
    "rle_intersections",
    "track_ious",
]

# Pair-frames are processed in chunks of at most this many query runs (device memory bound).
_CHUNK_QUERIES = 1 << 21
_MIN_BUCKET = 1 << 12
_POSITION_MASK = np.int64((1 << 32) - 1)


def _bucket(n: int, minimum: int = _MIN_BUCKET) -> int:
    """The smallest power of four >= max(n, minimum): padded shapes, so kernels compile rarely."""
    size = minimum
    while size < n:
        size *= 4
    return size


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


def pair_frames(
    d_masks: MaskTable,
    g_masks: MaskTable,
    d_runs: RunTable,
    g_runs: RunTable,
    pair_d: np.ndarray,
    pair_g: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The (pair, result frame, ground-truth frame) triples whose intersection can be nonzero.

    Frames where either side is null or empty, or whose foreground position spans (column-major)
    or row ranges do not overlap, are left out (their intersection is 0).

    Args:
        pair_d: int64[P] result track of each pair.
        pair_g: int64[P] ground-truth track of each pair (same video).

    Returns:
        ``(pair, d_frame, g_frame)``, int64 arrays of equal length.
    """
    length = d_masks.frame_start[pair_d + 1] - d_masks.frame_start[pair_d]
    total = int(length.sum())
    pair = np.repeat(np.arange(pair_d.shape[0], dtype=np.int64), length)
    offset = np.arange(total, dtype=np.int64) - np.repeat(np.cumsum(length) - length, length)
    d_frame = d_masks.frame_start[pair_d][pair] + offset
    g_frame = g_masks.frame_start[pair_g][pair] + offset
    d_first, d_last = d_runs.spans()
    g_first, g_last = g_runs.spans()
    keep = (
        (d_masks.area[d_frame] > 0)
        & (g_masks.area[g_frame] > 0)
        & (d_first[d_frame] < g_last[g_frame])
        & (g_first[g_frame] < d_last[d_frame])
        & (d_runs.top[d_frame] <= g_runs.bottom[g_frame])
        & (g_runs.top[g_frame] <= d_runs.bottom[d_frame])
    )
    return pair[keep], d_frame[keep], g_frame[keep]


@functools.partial(jax.jit, static_argnames=("num_slots", "num_pairs", "steps"))
def _intersections_kernel(
    q_start,
    q_end,
    b_start,
    b_end,
    b_before,
    pf_query_first,
    pf_base_first,
    pf_base_count,
    pf_base_area,
    pf_pair,
    pf_slot_start,
    *,
    num_slots: int,
    num_pairs: int,
    steps: int,
):
    """Intersections of one chunk of pair-frames.

    Args:
        q_start, q_end: int32[runs] the query side's foreground runs.
        b_start, b_end, b_before: the base side's runs (int32, int32, int64).
        pf_query_first: int64[F] first query run of each pair-frame.
        pf_base_first, pf_base_count: int64[F] base runs of each pair-frame.
        pf_base_area: int64[F] foreground pixels of the base frame.
        pf_pair: int32[F] pair of each pair-frame (``num_pairs`` for padding).
        pf_slot_start: int64[F + 1] first query slot of each pair-frame.
        num_slots: padded number of query slots (static).
        num_pairs: number of pairs (static, padded).
        steps: binary-search steps, >= log2(max base runs + 1) (static).

    Returns:
        int64[num_pairs] intersections.
    """
    slot = jnp.arange(num_slots, dtype=jnp.int64)
    pf = jnp.searchsorted(pf_slot_start, slot, side="right") - 1
    pf = jnp.clip(pf, 0, pf_query_first.shape[0] - 1)
    valid = slot < pf_slot_start[-1]
    run = pf_query_first[pf] + (slot - pf_slot_start[pf])
    run = jnp.where(valid, run, 0)
    s = q_start[run].astype(jnp.int64)
    e = q_end[run].astype(jnp.int64)
    lo0 = pf_base_first[pf]
    n = pf_base_count[pf]

    def coverage(x):
        # Number of base runs ending at or before x (binary search over [lo0, lo0 + n)).
        lo = jnp.zeros_like(x)
        hi = n

        def body(_, carry):
            lo, hi = carry
            mid = (lo + hi) // 2
            active = lo < hi
            right = b_end[jnp.minimum(lo0 + mid, b_end.shape[0] - 1)] <= x
            return jnp.where(active & right, mid + 1, lo), jnp.where(active & ~right, mid, hi)

        k, _ = jax.lax.fori_loop(0, steps, body, (lo, hi))
        idx = jnp.minimum(lo0 + k, b_end.shape[0] - 1)
        partial = b_before[idx] + jnp.maximum(0, x - b_start[idx].astype(jnp.int64))
        return jnp.where(k < n, partial, pf_base_area[pf])

    contrib = jnp.where(valid, coverage(e) - coverage(s), 0)
    return jax.ops.segment_sum(contrib, pf_pair[pf], num_segments=num_pairs + 1)[:num_pairs]


def rle_intersections(
    d_masks: MaskTable,
    g_masks: MaskTable,
    pair_d: np.ndarray,
    pair_g: np.ndarray,
    *,
    d_runs: RunTable | None = None,
    g_runs: RunTable | None = None,
    method: str = "auto",
) -> np.ndarray:
    """Exact intersections, summed over frames, of P (result, ground truth) track pairs.

    Two implementations of the same computation (both exact, tested against pycocotools):
    ``"device"``, the jitted binary-search kernel (fast on a GPU/TPU), and ``"host"``, the
    same search done by NumPy's compiled ``searchsorted`` over all frames at once, which is
    measured ~8× faster than XLA's gather loops on a CPU. ``"auto"`` picks ``"device"`` when
    JAX's default backend is a GPU, else ``"host"`` (CPU, and TPU where int64 is not native).
    The device path must be called under ``jax.enable_x64(True)`` (the counts are int64).

    Args:
        d_masks, g_masks: the result and ground-truth tracks as run lengths.
        pair_d, pair_g: int64[P] the tracks of each pair (same video).
        d_runs, g_runs: their :class:`RunTable` if already built.
        method: ``"auto"``, ``"host"`` or ``"device"``.

    Returns:
        int64[P] intersections (host).
    """
    if method not in ("auto", "host", "device"):
        raise ValueError(f"method must be 'auto', 'host' or 'device', got {method!r}")
    if method == "auto":
        method = "device" if jax.default_backend() == "gpu" else "host"
    d_runs = d_runs or RunTable.from_masks(d_masks)
    g_runs = g_runs or RunTable.from_masks(g_masks)
    num_pairs = int(pair_d.shape[0])
    total = np.zeros(num_pairs, dtype=np.int64)
    if num_pairs == 0:
        return total
    pair, d_frame, g_frame = pair_frames(d_masks, g_masks, d_runs, g_runs, pair_d, pair_g)
    if pair.shape[0] == 0:
        return total
    # Only the runs of one frame inside the other frame's foreground span can meet it.
    d_first, d_last = d_runs.spans()
    g_first, g_last = g_runs.spans()
    d_q0, d_n = _window(d_runs, d_frame, g_first[g_frame], g_last[g_frame])
    g_q0, g_n = _window(g_runs, g_frame, d_first[d_frame], d_last[d_frame])
    # Query with the side that has fewer runs there; binary-search the other frame's runs.
    for query_is_d in (True, False):
        sel = ((d_n <= g_n) if query_is_d else (d_n > g_n)) & (np.minimum(d_n, g_n) > 0)
        if not sel.any():
            continue
        b_frame = (g_frame if query_is_d else d_frame)[sel]
        b_runs = g_runs if query_is_d else d_runs
        side = _Side(
            q_runs=d_runs if query_is_d else g_runs,
            b_runs=b_runs,
            q_first=(d_q0 if query_is_d else g_q0)[sel],
            b_frame=b_frame,
            q_n=(d_n if query_is_d else g_n)[sel],
            b_n=b_runs.frame_first[b_frame + 1] - b_runs.frame_first[b_frame],
            b_area=(g_masks if query_is_d else d_masks).area[b_frame],
            pair=pair[sel],
        )
        if method == "host":
            total += _host_intersections(side, num_pairs)
        else:
            total += _device_intersections(side, num_pairs)
    return total


def _window(
    runs: RunTable, frame: np.ndarray, lo: np.ndarray, hi: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """First index and number of the runs of each ``frame`` that meet ``[lo, hi)``."""
    base = frame << np.int64(32)
    first = np.searchsorted(runs.end_key, base | lo, side="right")
    stop = np.searchsorted(runs.start_key, base | hi, side="left")
    return first, np.maximum(stop - first, 0)


@dataclasses.dataclass(frozen=True)
class _Side:
    """Pair-frames whose query runs (``q_runs``) are searched in base runs (``b_runs``)."""

    q_runs: RunTable
    b_runs: RunTable
    q_first: np.ndarray  # int64[F] first query run of each pair-frame
    b_frame: np.ndarray  # int64[F]
    q_n: np.ndarray  # int64[F] query runs of each pair-frame
    b_n: np.ndarray  # int64[F] base runs of each pair-frame
    b_area: np.ndarray  # int64[F] foreground pixels of the base frame
    pair: np.ndarray  # int64[F]


def _chunk_bounds(q_n: np.ndarray, limit: int) -> list[int]:
    """Boundaries of consecutive pair-frame chunks holding at most ``limit`` query runs each
    (a single pair-frame over the limit gets a chunk of its own)."""
    csum = np.cumsum(q_n)
    bounds = [0]
    while bounds[-1] < q_n.shape[0]:
        base = csum[bounds[-1] - 1] if bounds[-1] else 0
        nxt = int(np.searchsorted(csum, base + limit, side="right"))
        bounds.append(max(nxt, bounds[-1] + 1))
    return bounds


def _host_intersections(side: _Side, num_pairs: int) -> np.ndarray:
    """NumPy: one ``searchsorted`` of every query run end into all base runs, keyed by frame."""
    b = side.b_runs
    keys = b.end_key
    total = np.zeros(num_pairs, dtype=np.int64)
    bounds = _chunk_bounds(side.q_n, _CHUNK_QUERIES // 2)

    def chunk(c: tuple[int, int]) -> np.ndarray:
        c0, c1 = c
        q_n = side.q_n[c0:c1]
        n_q = int(q_n.sum())
        first = side.q_first[c0:c1]
        run = np.repeat(first - (np.cumsum(q_n) - q_n), q_n) + np.arange(n_q, dtype=np.int64)
        pf = np.repeat(np.arange(c1 - c0, dtype=np.int64), q_n)
        b_frame = side.b_frame[c0:c1][pf]
        offset = b_frame << np.int64(32)
        frame_end = b.frame_first[b_frame + 1]
        b_area = side.b_area[c0:c1][pf]

        def coverage(x):
            idx = np.searchsorted(keys, offset + x, side="right")
            inside = idx < frame_end  # else: past the frame's last run
            idx = np.minimum(idx, keys.shape[0] - 1)
            partial = b.before[idx] + np.maximum(0, (offset | x) - b.start_key[idx])
            return np.where(inside, partial, b_area)

        q = side.q_runs
        contrib = coverage(q.end_key[run] & _POSITION_MASK) - coverage(
            q.start_key[run] & _POSITION_MASK
        )
        per_pf = np.add.reduceat(contrib, np.cumsum(q_n) - q_n) if n_q else contrib
        return np.where(q_n > 0, per_pf, 0)

    chunks = list(itertools.pairwise(bounds))
    for (c0, c1), per_pf in zip(chunks, parallel_map(chunk, chunks), strict=True):
        np.add.at(total, side.pair[c0:c1], per_pf)
    return total


def _device_intersections(side: _Side, num_pairs: int) -> np.ndarray:
    """The jitted kernel over padded chunks of pair-frames."""
    padded_pairs = _bucket(num_pairs)
    total = np.zeros(num_pairs, dtype=np.int64)
    steps = -(-int(side.b_n.max() + 1).bit_length() // 8) * 8  # multiple of 8 >= log2(n + 1)
    dev_q = (_padded(side.q_runs.start), _padded(side.q_runs.end))
    b = side.b_runs
    dev_b = (_padded(b.start), _padded(b.end), _padded(b.before))
    # Chunks of pair-frames with at most _CHUNK_QUERIES query runs.
    bounds = _chunk_bounds(side.q_n, _CHUNK_QUERIES)
    for c0, c1 in itertools.pairwise(bounds):
        nf = c1 - c0
        pf_pad = _bucket(nf)
        slot_start = np.zeros(pf_pad + 1, dtype=np.int64)
        np.cumsum(side.q_n[c0:c1], out=slot_start[1 : nf + 1])
        slot_start[nf + 1 :] = slot_start[nf]
        pad = functools.partial(_pad_to, size=pf_pad)
        total += np.asarray(
            _intersections_kernel(
                *dev_q,
                *dev_b,
                pad(side.q_first[c0:c1]),
                pad(b.frame_first[side.b_frame[c0:c1]]),
                pad(side.b_n[c0:c1]),
                pad(side.b_area[c0:c1]),
                pad(side.pair[c0:c1], fill=padded_pairs),
                slot_start,
                num_slots=_bucket(int(slot_start[-1])),
                num_pairs=padded_pairs,
                steps=steps,
            )
        )[:num_pairs]
    return total


def _pad_to(x: np.ndarray, fill: int = 0, *, size: int) -> np.ndarray:
    """int64 copy of ``x`` padded with ``fill`` to ``size``."""
    out = np.full(size, fill, dtype=np.int64)
    out[: x.shape[0]] = x
    return out


def _padded(x: np.ndarray) -> jax.Array:
    """``x`` on the device, zero-padded to a bucket size (so shapes repeat across inputs)."""
    out = np.zeros(_bucket(x.shape[0]), dtype=x.dtype)
    out[: x.shape[0]] = x
    return jax.device_put(out)


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
