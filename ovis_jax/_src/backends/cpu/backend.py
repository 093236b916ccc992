"""The CPU backend: compiled numba kernels from the masks' bytes to the precision-recall arrays.

Path: group the tracks (host NumPy, :mod:`~grouping`) → exact intersections of every
(result, ground truth) pair of each group, decoding each group's RLE strings once and merging
run boundaries (:func:`~group_intersections`) → float64 IoUs → the
official greedy walk (:func:`~ovis_jax._src.backends.cpu.kernels.match_groups`) → accumulation
(:func:`~accumulate`). Chunks of groups / categories run in a thread per
core. JAX is neither imported nor used.
"""

from __future__ import annotations

import contextlib
import logging

import numpy as np

from ovis_jax._src.backends.cpu import kernels as K
from ovis_jax._src.backends.cpu import precompile
from ovis_jax._src.backends.grouping import (
    Groups,
    group_tracks,
    gt_ignore_flags,
    not_ignored_counts,
    range_flags,
)
from ovis_jax._src.io.model import GroundTruth, Results
from ovis_jax._src.metrics.ap.curves import CurveLayout
from ovis_jax._src.metrics.matches import match_records
from ovis_jax._src.parallel import run_chunks
from ovis_jax._src.params import EvalParams
from ovis_jax._src.similarity.cpu import frame_ious, pair_ious

__all__ = ["CpuBackend", "greedy_one"]

logger = logging.getLogger(__name__)


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
    groups: Groups, gt: GroundTruth, results: Results, params: EvalParams, flags, *, scores=True,
    layout: CurveLayout | None = None,
):  # fmt: skip
    """precision float64[T, R, K, I], recall float64[T, K, I] and scores float64[T, R, K, I]
    (step 11) in ``layout`` (K its kept categories, I its kept slots; the official arrays,
    flattened past K, by default); scores None when not asked for (its memory, as large as
    precision's, is then never allocated)."""
    matched, ignored, gt_ignore = flags
    n_k = gt.category_ids.shape[0]
    n_t, n_a, n_o = matched.shape[1:]
    n_r, n_m = len(params.recall_thresholds), len(params.max_dets)
    if layout is None:
        layout = CurveLayout.full(n_k, (n_a, n_o, n_m))
    npig = not_ignored_counts(gt, gt_ignore)
    d_group = groups.d_group
    d_k, d_v = groups.key[d_group] % max(n_k, 1), groups.key[d_group] // max(n_k, 1)
    score = results.score[groups.d_track]
    order = np.lexsort((groups.d_rank, d_v, -score, d_k))
    cat_start = np.zeros(n_k + 1, dtype=np.int64)
    np.cumsum(np.bincount(d_k, minlength=n_k), out=cat_start[1:])
    cats, n_j, n_s = layout.cats, layout.cats.shape[0], layout.num_slots
    precision = np.full((n_t, n_r, n_j, n_s), -1.0)
    recall = np.full((n_t, n_j, n_s), -1.0)
    out_scores = np.full_like(precision, -1.0) if scores else np.empty((0, 1, 1, 1))
    precompile.wait_for("accumulate")  # a first run's helper process may have it
    run_chunks(
        lambda j0, j1: K.accumulate(
            order, cat_start, groups.d_rank, score, matched, ignored, npig,
            np.asarray(params.max_dets, dtype=np.int64), params.recall_array, cats,
            layout.slots, j0, j1, precision, recall, out_scores,
        ),
        n_j,
        cost=(cat_start[cats + 1] - cat_start[cats]) + 1,
        min_cost=1 << 14,
    )  # fmt: skip
    return precision, recall, (out_scores if scores else None)


class CpuBackend:
    """The ``cpu`` backend: the pipeline's stages on the compiled numba kernels."""

    name = "cpu"

    def context(self) -> contextlib.AbstractContextManager:
        return contextlib.nullcontext()

    def plan(self, gt: GroundTruth, results: Results, params: EvalParams) -> Groups:
        return group_tracks(
            gt, results.video_id, results.category_id, results.score, max_det=params.max_dets[-1]
        )

    def track_ious(self, gt: GroundTruth, results: Results, plan: Groups) -> np.ndarray:
        logger.info("intersections of %d track pairs", int(plan.pair_start[-1]))
        return pair_ious(results.masks, gt.masks, plan)

    def match(self, gt, results, plan: Groups, ious: np.ndarray, params: EvalParams):
        return _match(ious, plan, gt, results, params)

    def accumulate(
        self, gt, results, plan: Groups, flags, params: EvalParams, *, scores: bool, layout=None
    ):
        return _accumulate(plan, gt, results, params, flags, scores=scores, layout=layout)

    def match_records(self, gt, results, plan: Groups, ious: np.ndarray, params: EvalParams):
        return match_records(gt, results, plan, ious, params=params)

    def pair_ious(self, gt, results, groups: Groups) -> np.ndarray:
        return pair_ious(results.masks, gt.masks, groups)

    def greedy(self, ious, ignore, crowd, threshold: float) -> np.ndarray:
        return greedy_one(ious, ignore, crowd, threshold)

    def frame_ious(self, gt, results, d: np.ndarray, g: np.ndarray):
        return frame_ious(results, gt, d, g)


def greedy_one(
    ious: np.ndarray, ignore: np.ndarray, crowd: np.ndarray, threshold: float
) -> np.ndarray:
    """Metric step 9 for one group at one threshold with the compiled walk: int64[D] the
    matched column of each result of float64[D, G] ``ious`` (score order), -1 if none."""
    n_d, n_g = ious.shape
    found = np.full((n_d, 1, 1, 1), -1, dtype=np.int64)
    flags = np.zeros((n_d, 1, 1, 1), dtype=bool), np.zeros((n_d, 1, 1, 1), dtype=bool)
    K.match_groups(
        np.ascontiguousarray(ious, dtype=np.float64).reshape(-1),
        np.array([0, n_d * n_g], dtype=np.int64), np.array([0, n_d], dtype=np.int64),
        np.array([0, n_g], dtype=np.int64),
        np.ascontiguousarray(ignore, dtype=bool).reshape(n_g, 1, 1),
        np.ascontiguousarray(crowd, dtype=bool), np.zeros((n_d, 1), dtype=bool),
        np.array([threshold], dtype=np.float64), 0, 1, *flags, found,
    )  # fmt: skip
    return found[:, 0, 0, 0]
