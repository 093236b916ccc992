"""Device side of the streaming evaluator: pure, jittable functions of fixed shapes.

:func:`update_state` writes a batch's per-video results into a
:class:`~ovis_jax._src.streaming.state.StreamingState`; :func:`video_stats` computes them for
one video by gathering its predictions at the ground truth's foreground pixel slots (the work is
N × L per video, independent of G and of the canvas). :func:`resize_masks` prepares
model-resolution masks for it.

Shapes use the legend of :mod:`ovis_jax._src.legend`: V videos of the ground truth, B videos of
a batch, N predictions per video, F × H × W the batch's canvas, G ground-truth tracks per
video, U foreground runs per video, L pixel slots per video.
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp

from ovis_jax._src.streaming.labels import split_labels
from ovis_jax._src.streaming.state import StreamingState
from ovis_jax._src.streaming.tables import BLOCK, INT32_LIMIT, GTBatch

__all__ = [
    "batch_sharding",
    "count_pixels",
    "resize_masks",
    "update_state",
    "update_state_jit",
    "video_stats",
]

# Pixel counts sum groups of this many booleans in int8 first (see count_pixels).
_GROUP = 32


def count_pixels(x: jax.Array) -> jax.Array:
    """int32[...]: the number of True pixels of bool[..., H, W] masks.

    Sums groups of ``_GROUP`` pixels of a row in int8 first: XLA:CPU reduces a long boolean
    axis into int32 several times slower than this two-level sum.
    """
    *lead, h, w = x.shape
    q = w // _GROUP
    total = jnp.zeros(tuple(lead), jnp.int32)
    if q:
        rows = jnp.sum(x[..., : q * _GROUP].reshape(*lead, h, q, _GROUP), axis=-1, dtype=jnp.int8)
        total = total + jnp.sum(rows, axis=(-2, -1), dtype=jnp.int32)
    if w > q * _GROUP:
        total = total + jnp.sum(x[..., q * _GROUP :], axis=(-2, -1), dtype=jnp.int32)
    return total


def _slot_pixels(gt: GTBatch, *, num_pixels: int, h: int, w: int):
    """One video's pixel slots: flat canvas position int32[L], valid bool[L], run int32[L]."""
    size, run_start, run_length, run_frame, _, run_offset = gt
    height = size[1]
    num_r = run_start.shape[0]
    k = jnp.arange(num_pixels, dtype=jnp.int32)
    starts = jnp.zeros(num_pixels, jnp.int32).at[run_offset].add(1, mode="drop")
    rid = jnp.cumsum(starts, dtype=jnp.int32) - 1  # slots sorted by offset: slot k is in run rid
    rc = jnp.clip(rid, 0, num_r - 1)
    within = k - run_offset[rc]
    ok = (rid >= 0) & (within < run_length[rc])
    p = run_start[rc] + within  # column-major position in the video's frame
    col_h = jnp.maximum(height, 1)
    flat = (run_frame[rc] * h + p % col_h) * w + p // col_h
    return jnp.where(ok, flat, 0), ok, rc


def video_stats(fg: jax.Array, gt: GTBatch, *, num_pixels: int, num_tracks: int):
    """One video's results: fg bool[N, F, H, W] -> inter int32[N, G], area int32[N], frames
    int32[N] (pixels of each prediction, and its frames with pixels, within the video's size).

    ``gt`` is one row of a :class:`GTBatch` (its arrays without the B axis).
    """
    n, f, h, w = fg.shape
    length, height, width = gt.size[0], gt.size[1], gt.size[2]
    region = (
        (jnp.arange(f) < length)[:, None, None]
        & (jnp.arange(h) < height)[None, :, None]
        & (jnp.arange(w) < width)[None, None, :]
    )
    frame_area = count_pixels(fg & region)  # [N, F]
    area = jnp.sum(frame_area, axis=1, dtype=jnp.int32)
    frames = jnp.sum(frame_area > 0, axis=1, dtype=jnp.int32)
    flat, ok, rc = _slot_pixels(gt, num_pixels=num_pixels, h=h, w=w)
    hit = jnp.take(fg.reshape(n, f * h * w), flat, axis=1) & ok[None, :]  # [N, L]
    blocks = jnp.sum(
        jnp.sum(
            hit.reshape(n, num_pixels // BLOCK, BLOCK // _GROUP, _GROUP), axis=3, dtype=jnp.int8
        ),
        axis=2,
        dtype=jnp.int32,
    )
    block_slot = gt.run_slot[rc[::BLOCK]]
    inter = jax.ops.segment_sum(
        blocks.T, block_slot, num_segments=num_tracks, indices_are_sorted=True
    ).T
    return inter, area, frames


def _write_rows(state: StreamingState, video_pos: Any) -> tuple[jax.Array, jax.Array]:
    """int32[B] rows to write (V where nothing is written) and rows to mark in conflict."""
    n_v = state.updated.shape[0]
    b = video_pos.shape[0]
    pos = jnp.asarray(video_pos, jnp.int32)
    real = pos >= 0
    already = state.updated[jnp.where(real, pos, 0)] & real
    earlier = (pos[None, :] == pos[:, None]) & jnp.tril(jnp.ones((b, b), jnp.bool_), k=-1)
    conflict = real & (already | jnp.any(earlier, axis=1))
    return jnp.where(real & ~conflict, pos, n_v), jnp.where(conflict, pos, n_v)


def update_state(
    state: StreamingState,
    gt_batch: GTBatch,
    video_pos: Any,
    masks: Any,
    scores: Any,
    labels: Any,
    valid: Any = None,
    *,
    num_pixels: int,
    num_tracks: int,
) -> StreamingState:
    """``state`` with a batch's videos written (pure, jittable).

    Args:
        state: the state so far (V videos, N_max predictions).
        gt_batch: the batch's ground truth (``prepare``).
        video_pos: int32[B] each video's row in the state, -1 for padding.
        masks: bool or float[B, N, F, H, W] (thresholded at 0.5 unless boolean), N <= N_max.
        scores: float[B, N].
        labels: int[B, N] category ids, or the ``(lo, hi)`` int32[B, N] halves of
            :func:`~ovis_jax._src.streaming.labels.host_labels`.
        valid: bool[B, N], or None for all.
        num_pixels: L of the tables (static).
        num_tracks: G of the tables (static).

    Returns:
        The new state. A video already updated (in ``state`` or earlier in the batch) is not
        written but marked in ``conflict``.
    """
    b, n, f, h, w = masks.shape
    n_max = state.inter.shape[1]
    if n > n_max:
        raise ValueError(f"masks have N = {n} predictions, more than max_predictions {n_max}")
    if f * h * w >= INT32_LIMIT:
        raise ValueError(f"a canvas of {f}x{h}x{w} pixels overflows int32 pixel counts")
    fg = masks if masks.dtype == jnp.bool_ else masks >= 0.5
    label_lo, label_hi = split_labels(labels)
    if valid is None:
        valid = jnp.ones((b, n), jnp.bool_)
    stats = functools.partial(video_stats, num_pixels=num_pixels, num_tracks=num_tracks)
    inter, area, frames = jax.vmap(lambda x, g: stats(x, GTBatch(*g)))(fg, tuple(gt_batch))
    write, mark = _write_rows(state, video_pos)

    def put(old, new, fill=0):
        new = jnp.pad(
            new, [(0, 0), (0, n_max - n)] + [(0, 0)] * (new.ndim - 2), constant_values=fill
        )
        return old.at[write].set(new.astype(old.dtype), mode="drop")

    return StreamingState(
        inter=put(state.inter, inter),
        pred_area=put(state.pred_area, area),
        pred_frames=put(state.pred_frames, frames),
        score=put(state.score, jnp.asarray(scores, jnp.float32)),
        label=put(state.label, label_lo),
        label_hi=put(state.label_hi, label_hi),
        valid=put(state.valid, jnp.asarray(valid, jnp.bool_), False),
        updated=state.updated.at[write].set(True, mode="drop"),
        conflict=state.conflict.at[mark].set(True, mode="drop"),
        fingerprint=state.fingerprint,
    )


#: :func:`update_state` jitted once for every evaluator: evaluators whose tables have equal sizes
#: (e.g. one re-created after a restart) share its compilations.
update_state_jit = jax.jit(update_state, static_argnames=("num_pixels", "num_tracks"))


def batch_sharding(masks: Any) -> jax.sharding.Sharding | None:
    """The sharding of a batch's first axis when ``masks`` is split along it, else None."""
    sharding = getattr(masks, "sharding", None)
    if not isinstance(sharding, jax.sharding.NamedSharding):
        return None
    spec = tuple(sharding.spec)
    if not spec or spec[0] is None:
        return None
    return jax.sharding.NamedSharding(sharding.mesh, jax.sharding.PartitionSpec(spec[0]))


@functools.partial(jax.jit, static_argnames=("canvas", "method", "antialias"))
def resize_masks(
    masks: jax.Array,
    video_sizes: jax.Array,
    *,
    canvas: tuple[int, int],
    threshold: float = 0.5,
    method: str = "linear",
    antialias: bool = True,
) -> jax.Array:
    """Resizes model-resolution masks to each video's own size, on a padded canvas, and
    thresholds them: the ``masks`` input of :meth:`StreamingEvaluator.update`.

    For video b of size ``(h_b, w_b)``: ``out[b, ..., :h_b, :w_b]`` is
    ``jax.image.resize(masks[b], (N, F, h_b, w_b), method, antialias) >= threshold`` and every
    other pixel of the ``H × W`` canvas is False. It is computed with
    ``jax.image.scale_and_translate`` (scale ``h_b / h``, ``w_b / w``, no translation; the same
    kernel, antialiasing when downsampling, and edge handling as ``jax.image.resize``), so the
    per-video sizes may be traced values; the scale factors are float32, so values can differ
    from ``jax.image.resize``'s by float32 rounding. Frames are not resized.

    Args:
        masks: float[B, N, F, h, w] probabilities (or logits, with ``threshold=0.0``:
            ``sigmoid(x) >= 0.5`` exactly when ``x >= 0``) at the model's resolution h × w.
        video_sizes: int[B, 2] each video's (height, width); <= canvas. Padding rows may use
            (0, 0) (all False).
        canvas: (H, W) static canvas size, e.g. the largest video size of the dataset.
        threshold: foreground where the resized value is >= threshold.
        method: ``"linear"`` (bilinear, default), ``"cubic"``, ``"lanczos3"`` or
            ``"lanczos5"``.
        antialias: as in ``jax.image.resize``.

    Returns:
        bool[B, N, F, H, W].
    """
    _, n, f, h, w = masks.shape
    big_h, big_w = canvas
    sizes = jnp.asarray(video_sizes, jnp.int32)

    def one(x, size):
        scale = jnp.maximum(size, 1).astype(jnp.float32) / jnp.asarray([h, w], jnp.float32)
        y = jax.image.scale_and_translate(
            x.astype(jnp.promote_types(x.dtype, jnp.float32)),
            (n, f, big_h, big_w),
            (2, 3),
            scale,
            jnp.zeros(2, jnp.float32),
            method=method,
            antialias=antialias,
        )
        region = (jnp.arange(big_h) < size[0])[:, None] & (jnp.arange(big_w) < size[1])[None, :]
        return (y >= threshold) & region

    return jax.vmap(one)(masks, sizes)
