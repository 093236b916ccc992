"""The CPU backend: compiled numba kernels from the masks' bytes to the precision-recall arrays.

Path: group the tracks (host NumPy, :mod:`~grouping`) → exact intersections of every
(result, ground truth) pair of each group, decoding each group's RLE strings once and merging
run boundaries (:func:`~group_intersections`) → float64 IoUs → the
official greedy walk (:func:`~ovis_jax._src.backends.cpu.kernels.match_groups`) → accumulation
(:func:`~accumulate`). Chunks of groups / categories run in a thread per
core. JAX is neither imported nor used.
"""

from __future__ import annotations

import dataclasses
import logging

import numpy as np

from ovis_jax._src.backends.cpu import kernels as K
from ovis_jax._src.backends.grouping import (
    Groups,
    group_tracks,
    gt_ignore_flags,
    length_views,
    not_ignored_counts,
    range_flags,
)
from ovis_jax._src.io.loading import GroundTruth, Results
from ovis_jax._src.masks.rle import MaskTable
from ovis_jax._src.metrics.ap.summary import EvalResult, result_from_arrays
from ovis_jax._src.parallel import run_chunks
from ovis_jax._src.params import EvalParams
from ovis_jax._src.progress import Stopwatch, stage

__all__ = ["evaluate_cpu", "pair_ious"]

logger = logging.getLogger(__name__)


def _side(masks: MaskTable) -> tuple[np.ndarray, ...]:
    """The arrays a kernel reads for one side, plus its per-frame scratch offsets."""
    return (
        masks.chars,
        masks.char_start,
        masks.frame_string,
        masks.frame_start,
        masks.string_values,
        masks.string_area,
        masks.string_first,
        masks.string_last,
        np.zeros(masks.frame_string.shape[0], dtype=np.int64),
    )


def pair_ious(d_masks: MaskTable, g_masks: MaskTable, groups: Groups) -> np.ndarray:
    """float64[pairs] track IoUs of every pair of every group (metric step 6), result-major.

    Intersections are exact integers; ``IoU = I / (area_d + area_g - I)`` in float64, 0 where
    the union is empty.
    """
    n_pairs = int(groups.pair_start[-1])
    inter = np.zeros(n_pairs, dtype=np.int64)
    d, g = _side(d_masks), _side(g_masks)
    # Cost of a group: the run lengths it decodes plus those it merges (pairs x frames).
    run_chunks(
        lambda g0, g1: K.group_intersections(
            d, g, groups.d_track, groups.d_start, groups.g_track, groups.g_start,
            groups.pair_start, g0, g1, inter,
        ),
        groups.num_groups,
        cost=np.diff(groups.pair_start) + 1,
        min_cost=256,
    )  # fmt: skip
    pair_d, pair_g = groups.pairs()
    union = d_masks.track_areas()[pair_d] + g_masks.track_areas()[pair_g] - inter
    safe = np.where(union > 0, union, 1).astype(np.float64)
    return np.where(union > 0, inter.astype(np.float64) / safe, 0.0)


#: ``match_groups``' ``matched_gt`` when the matched ground truths are not wanted.
_NO_GT = np.empty((0, 1, 1, 1), dtype=np.int64)


def _match(ious, groups: Groups, gt: GroundTruth, results: Results, params: EvalParams):
    """bool[D, T, A, O] matched and ignored flags of the kept results (steps 9-10)."""
    gt_ignore = gt_ignore_flags(gt, params)
    n_d, n_t = groups.d_track.shape[0], len(params.iou_thresholds)
    shape = (n_d, n_t, gt_ignore.shape[1], gt_ignore.shape[2])
    matched, ignored = np.zeros(shape, dtype=bool), np.zeros(shape, dtype=bool)
    dt_area_out = range_flags(results.avg_area[groups.d_track], params.area_bounds())
    g_ignore = np.ascontiguousarray(gt_ignore[groups.g_track])
    run_chunks(
        lambda g0, g1: K.match_groups(
            ious, groups.pair_start, groups.d_start, groups.g_start, g_ignore,
            gt.iscrowd[groups.g_track], dt_area_out, params.iou_array, g0, g1, matched, ignored,
            _NO_GT,
        ),
        groups.num_groups,
        cost=np.diff(groups.pair_start) + 1,
        min_cost=1 << 14,
    )  # fmt: skip
    return matched, ignored, gt_ignore


def _accumulate(
    groups: Groups, gt: GroundTruth, results: Results, params: EvalParams, flags, *, scores=True
):
    """precision float64[T, R, K, A, O, M], recall float64[T, K, A, O, M] and scores
    float64[T, R, K, A, O, M] (step 11); scores None when not asked for (its memory, as large
    as precision's, is then never allocated)."""
    matched, ignored, gt_ignore = flags
    n_k = gt.category_ids.shape[0]
    n_t, n_a, n_o = matched.shape[1:]
    n_r, n_m = len(params.recall_thresholds), len(params.max_dets)
    npig = not_ignored_counts(gt, gt_ignore)
    d_group = groups.d_group
    d_k, d_v = groups.key[d_group] % max(n_k, 1), groups.key[d_group] // max(n_k, 1)
    score = results.score[groups.d_track]
    order = np.lexsort((groups.d_rank, d_v, -score, d_k))
    cat_start = np.zeros(n_k + 1, dtype=np.int64)
    np.cumsum(np.bincount(d_k, minlength=n_k), out=cat_start[1:])
    precision = np.full((n_t, n_r, n_k, n_a, n_o, n_m), -1.0)
    recall = np.full((n_t, n_k, n_a, n_o, n_m), -1.0)
    out_scores = np.full_like(precision, -1.0) if scores else np.empty((0, 1, 1, 1, 1, 1))
    run_chunks(
        lambda k0, k1: K.accumulate(
            order, cat_start, groups.d_rank, score, matched, ignored, npig,
            np.asarray(params.max_dets, dtype=np.int64), params.recall_array, k0, k1,
            precision, recall, out_scores,
        ),
        n_k,
        cost=np.diff(cat_start) + 1,
        min_cost=1 << 14,
    )  # fmt: skip
    return precision, recall, (out_scores if scores else None)


def evaluate_cpu(
    gt: GroundTruth,
    results: Results,
    *,
    params: EvalParams | None = None,
    lengths: bool = True,
    matches: bool = False,
) -> EvalResult:
    """Evaluates with the compiled CPU kernels; numbers equal the reference's.

    Args:
        gt: validated ground truth.
        results: validated results for it.
        params: evaluation parameters (the official ones by default).
        lengths: also run the track-length pass (AP by track length, same IoUs).
        matches: also record each result's matching (``EvalResult.matches``).

    Returns:
        The :class:`~ovis_jax.EvalResult`; ``timings`` has the seconds of each stage.
    """
    params = params or EvalParams()
    watch = Stopwatch()
    lap = watch.lap
    stage(logger, "decode")

    groups = group_tracks(
        gt, results.video_id, results.category_id, results.score, max_det=params.max_dets[-1]
    )
    lap("grouping")
    stage(logger, "intersections")
    logger.info("intersections of %d track pairs", int(groups.pair_start[-1]))
    ious = pair_ious(results.masks, gt.masks, groups)
    lap("intersections")
    stage(logger, "matching")
    flags = _match(ious, groups, gt, results, params)
    lap("matching")
    precision, recall, scores = _accumulate(groups, gt, results, params, flags)
    lap("accumulation")
    length = None
    if lengths:
        gt_l, res_l, params_l = length_views(gt, results, params)
        flags_l = _match(ious, groups, gt_l, res_l, params_l)
        lp, lr, _ = _accumulate(groups, gt_l, res_l, params_l, flags_l, scores=False)
        length = (params_l, lp, lr)
        lap("length_ranges")
    found = None
    if matches:
        from ovis_jax._src.metrics.matches import match_records

        found = match_records(gt, results, groups, ious, params=params)
        lap("matches")
    out = result_from_arrays(
        gt, precision, recall, params=params, warnings=results.warnings, scores=scores,
        length=length,
    )  # fmt: skip
    out = dataclasses.replace(out, matches=found)
    lap("summary")
    return dataclasses.replace(out, backend="cpu", timings=watch.timings)
