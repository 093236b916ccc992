"""Accumulation (metric step 11): precision-recall curves for all categories × area ranges ×
occlusion ranges × maxDets × IoU thresholds in one jitted batch.

Results of all categories are laid out flat and sorted by (category, score descending, video,
rank): one stable sort serves every curve. Cumulative TP/FP counts restart at each category's
segment. The 101-point lookup ``pr[searchsorted(rc, r, 'left')]`` is done without a search per
point: the result at position i answers exactly the recall thresholds r with
``rc[i-1] < r <= rc[i]`` (a contiguous run of thresholds, since rc is non-decreasing), so each
position marks where its run starts and a running maximum along the thresholds fills the rest.
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["accumulate"]

EPS = float(np.spacing(1))  # 2.220446049250313e-16, as the official code


def _reverse_segmented_cummax(values: jax.Array, seg_end: jax.Array) -> jax.Array:
    """Running max from the right along the last axis, restarting after each segment end.

    A sequential scan: exact, and much cheaper to compile than a log-depth parallel scan.

    Args:
        values: float64[..., E].
        seg_end: bool[E], True at the last element of each segment.
    """
    lead = values.shape[:-1]
    if values.shape[-1] == 0:
        return values
    flat = values.reshape(math.prod(lead), values.shape[-1]).T  # [E, prod(...)]

    def step(running, xs):
        value, end = xs
        running = jnp.where(end, value, jnp.maximum(running, value))
        return running, running

    init = jnp.zeros(flat.shape[1], dtype=values.dtype)
    _, out = jax.lax.scan(step, init, (flat, seg_end), reverse=True)
    return out.T.reshape(*lead, values.shape[-1])


@functools.partial(jax.jit, static_argnames=("num_categories",))
def accumulate(
    category: jax.Array,
    score: jax.Array,
    video: jax.Array,
    rank: jax.Array,
    matched: jax.Array,
    ignored: jax.Array,
    npig: jax.Array,
    max_dets: jax.Array,
    recall_thresholds: jax.Array,
    *,
    num_categories: int,
) -> tuple[jax.Array, jax.Array]:
    """Precision and recall arrays (call under ``jax.enable_x64(True)``).

    Args:
        category: int32[D] category index of each result (``num_categories`` for padding).
        score: float64[D].
        video: int32[D] position of the result's video in ascending id order.
        rank: int32[D] rank of the result within its (video, category) by score (a large
            value for padding).
        matched: bool[D, T, A, O] from the matching.
        ignored: bool[D, T, A, O] from the matching.
        npig: int64[K, A, O] not-ignored ground truths per category and range.
        max_dets: int32[M] ascending.
        recall_thresholds: float64[R] ascending.
        num_categories: K (static).

    Returns:
        ``(precision, recall, scores)``: float64[T, R, K, A, O, M], float64[T, K, A, O, M] and
        float64[T, R, K, A, O, M] (the score of the result each precision entry is read at, 0
        past the last), -1 where the category has no not-ignored ground truth.
    """
    n = category.shape[0]
    n_t, n_a, n_o = matched.shape[1:]
    n_m, n_r, n_k = max_dets.shape[0], recall_thresholds.shape[0], num_categories
    order = jnp.lexsort((rank, video, -score, category))
    category, rank, score = category[order], rank[order], score[order]
    matched, ignored = matched[order], ignored[order]
    pos = jnp.arange(n)
    seg_start = jnp.concatenate([jnp.ones(1, bool), category[1:] != category[:-1]])
    seg_end = jnp.concatenate([category[1:] != category[:-1], jnp.ones(1, bool)])
    first = jax.lax.cummax(jnp.where(seg_start, pos, 0))

    # Curves on the leading axes: [T, A, O, M, D].
    include = rank[None, :] < max_dets[:, None]  # [M, D]
    counted = ~ignored.transpose(1, 2, 3, 0)[:, :, :, None, :] & include  # [T, A, O, M, D]
    hit = matched.transpose(1, 2, 3, 0)[:, :, :, None, :]
    tp = (counted & hit).astype(jnp.int64)
    fp = (counted & ~hit).astype(jnp.int64)

    def seg_cumsum(x):
        cs = jnp.cumsum(x, axis=-1)
        before = jnp.where(first > 0, cs[..., jnp.maximum(first - 1, 0)], 0)
        return cs - before

    tp_cum = seg_cumsum(tp).astype(jnp.float64)
    fp_cum = seg_cumsum(fp).astype(jnp.float64)
    cat_safe = jnp.minimum(category, n_k - 1)
    npig_n = npig[cat_safe].transpose(1, 2, 0)[None, :, :, None, :]  # [1, A, O, 1, D]
    has_gt = npig_n > 0
    # The divisor is materialised behind a barrier: XLA rewrites a division by a broadcast
    # value into a multiplication by its reciprocal, which is not the same float64 number.
    divisor = jnp.broadcast_to(jnp.where(has_gt, npig_n, 1).astype(jnp.float64), tp_cum.shape)
    rc = tp_cum / jax.lax.optimization_barrier(divisor)
    pr = tp_cum / (fp_cum + tp_cum + EPS)
    env = _reverse_segmented_cummax(pr, seg_end)
    rc_prev = jnp.where(seg_start, -1.0, jnp.roll(rc, 1, axis=-1))
    lo = jnp.searchsorted(recall_thresholds, rc_prev, side="right")
    hi = jnp.searchsorted(recall_thresholds, rc, side="right")

    shape = (n_t, n_a, n_o, n_m)
    real = category < n_k
    marks = jnp.full((*shape, n_k + 1, n_r + 1), -1, dtype=jnp.int32)
    idx = jnp.indices((*shape, n))
    use = (hi > lo) & real
    marks = marks.at[
        idx[0], idx[1], idx[2], idx[3], jnp.where(use, category, n_k), jnp.where(use, lo, n_r)
    ].max(jnp.broadcast_to(pos.astype(jnp.int32), (*shape, n)))
    filled = jax.lax.cummax(marks[..., :n_k, :n_r], axis=marks.ndim - 1)  # [T, A, O, M, K, R]
    cat_or_dummy = jnp.where(real, category, n_k)
    last_hi = jnp.zeros((*shape, n_k + 1), dtype=hi.dtype)
    last_hi = last_hi.at[idx[0], idx[1], idx[2], idx[3], cat_or_dummy].max(hi)[..., :n_k]
    recall = jnp.zeros((*shape, n_k + 1), dtype=jnp.float64)
    recall = recall.at[idx[0], idx[1], idx[2], idx[3], cat_or_dummy].max(rc)[..., :n_k]
    env_at = jnp.take_along_axis(
        env[..., None, :], jnp.maximum(filled, 0).reshape(*shape, 1, -1), axis=-1
    ).reshape(filled.shape)
    r_idx = jnp.arange(n_r)
    read = (filled >= 0) & (r_idx < last_hi[..., None])
    precision = jnp.where(read, env_at, 0.0)
    score_ext = jnp.concatenate([score, jnp.zeros(1, score.dtype)])  # gatherable when N = 0
    scores = jnp.where(read, score_ext[jnp.maximum(filled, 0)], 0.0)
    defined = (npig > 0).transpose(1, 2, 0)[None, :, :, None, :]  # [1, A, O, 1, K]
    precision = jnp.where(defined[..., None], precision, -1.0)
    scores = jnp.where(defined[..., None], scores, -1.0)
    recall = jnp.where(defined, recall, -1.0)
    # [T, A, O, M, K, R] -> [T, R, K, A, O, M]; [T, A, O, M, K] -> [T, K, A, O, M]
    return (
        precision.transpose(0, 5, 4, 1, 2, 3),
        recall.transpose(0, 4, 1, 2, 3),
        scores.transpose(0, 5, 4, 1, 2, 3),
    )
