"""The CPU reference evaluator: the algorithm of "The metric" written out step by step.

NumPy plus ``pycocotools.mask`` operations, plain loops, no cleverness: this is the oracle the
JAX backend is tested against, so clarity wins over speed. Step numbers refer to
the README's "The metric".
"""

from __future__ import annotations

import dataclasses
import logging

import numpy as np
from pycocotools import mask as mask_utils

from ovis_jax._src import progress
from ovis_jax._src.backends.grouping import length_views
from ovis_jax._src.io.loading import GroundTruth, Results
from ovis_jax._src.metrics.ap.summary import EvalResult, result_from_arrays
from ovis_jax._src.params import EvalParams

__all__ = ["evaluate_reference", "greedy_match", "track_iou"]

logger = logging.getLogger(__name__)

EPS = np.spacing(1)  # 2.220446049250313e-16


def track_iou(d_frames, g_frames) -> float:
    """metric step 6: IoU of two tracks, summed over frames (pycocotools per-frame operations).

    Args:
        d_frames: per frame, a compressed RLE dict or None.
        g_frames: per frame, a compressed RLE dict or None.
    """
    inter = 0
    union = 0
    for d, g in zip(d_frames, g_frames, strict=True):
        if d is not None and g is not None:
            inter += int(mask_utils.area(mask_utils.merge([d, g], intersect=True)))
            union += int(mask_utils.area(mask_utils.merge([d, g], intersect=False)))
        elif d is not None:
            union += int(mask_utils.area(d))
        elif g is not None:
            union += int(mask_utils.area(g))
    return float(inter) / float(union) if union > 0 else 0.0


def greedy_match(
    ious: np.ndarray, ignore: list[bool], crowd: list[bool], threshold: float
) -> list[int | None]:
    """metric step 9 at one threshold: the ground truth each result is matched to, or None.

    Args:
        ious: float64[D, G], results in score order, ground truths in file order.
        ignore: G flags, the ground truth is ignored (in this area / occlusion range).
        crowd: G flags, the ground truth is a crowd (can absorb several results).
        threshold: the IoU threshold t.
    """
    n_d, n_g = ious.shape
    # Not-ignored first, then ignored, each in file order.
    walk = [j for j in range(n_g) if not ignore[j]] + [j for j in range(n_g) if ignore[j]]
    taken = [False] * n_g
    out: list[int | None] = []
    for i in range(n_d):
        best = min(threshold, 1 - 1e-10)
        m = None
        for j in walk:
            if taken[j] and not crowd[j]:
                continue
            if m is not None and not ignore[m] and ignore[j]:
                break
            if ious[i, j] < best:
                continue
            best = ious[i, j]
            m = j
        if m is not None:
            taken[m] = True
        out.append(m)
    return out


@dataclasses.dataclass
class _Pair:
    """One (video, category) pair: D kept results (score order), G ground truths (file order)."""

    d_idx: list[int]
    g_idx: list[int]
    ious: np.ndarray  # float64[D, G]
    overflow: list[int]  # results beyond the max-detection cut (never evaluated)


@dataclasses.dataclass
class _PairEval:
    """Matching outcome of one (video, category) pair, D results (score order), G ground truths."""

    scores: np.ndarray  # float64[D]
    dt_matched: np.ndarray  # bool[A, O, T, D]
    dt_ignored: np.ndarray  # bool[A, O, T, D]
    gt_ignored: np.ndarray  # bool[A, O, G]
    dt_gt: np.ndarray  # int64[A, O, T, D] the matched ground truth (position in g_idx), or -1


def _in_range(value: float, lo: float, hi: float) -> bool:
    return lo <= value <= hi  # ranges are inclusive at both ends (metric step 7)


def _pair_ious(
    gt: GroundTruth, res: Results, g_idx: list[int], d_idx: list[int], params: EvalParams
) -> _Pair:
    max_det = params.max_dets[-1]
    # Step 5: results by score, highest first, stable; keep the first max_det.
    order = sorted(range(len(d_idx)), key=lambda i: -res.score[d_idx[i]])
    ranked = [d_idx[i] for i in order]
    d_idx, overflow = ranked[:max_det], ranked[max_det:]
    # Step 6: track IoUs.
    ious = np.zeros((len(d_idx), len(g_idx)))
    for i, d in enumerate(d_idx):
        for j, g in enumerate(g_idx):
            ious[i, j] = track_iou(res.rles[d], gt.rles[g])
    return _Pair(d_idx=d_idx, g_idx=g_idx, ious=ious, overflow=overflow)


def _match_pair(gt: GroundTruth, res: Results, pair: _Pair, params: EvalParams) -> _PairEval:
    """Steps 8-10 for one pair; ``gt.avg_area`` / ``res.avg_area`` are the per-track values
    compared with the area ranges (track lengths in the track-length pass)."""
    g_idx, d_idx, ious = pair.g_idx, pair.d_idx, pair.ious
    n_d, n_g = len(d_idx), len(g_idx)
    area_bounds = params.area_bounds()
    occ_bounds = params.occlusion_bounds(gt.has_occlusion)
    thresholds = params.iou_thresholds
    n_a, n_o, n_t = len(area_bounds), len(occ_bounds), len(thresholds)
    dt_matched = np.zeros((n_a, n_o, n_t, n_d), dtype=bool)
    dt_ignored = np.zeros((n_a, n_o, n_t, n_d), dtype=bool)
    dt_gt = np.full((n_a, n_o, n_t, n_d), -1, dtype=np.int64)
    gt_ignored = np.zeros((n_a, n_o, n_g), dtype=bool)
    crowd = [bool(gt.iscrowd[g]) for g in g_idx]
    for a, (a_lo, a_hi) in enumerate(area_bounds):
        for o, (o_lo, o_hi) in enumerate(occ_bounds):
            # Step 8: per-range ignore flags.
            ignore = [
                crowd[j]
                or not _in_range(gt.avg_area[g], a_lo, a_hi)
                or (gt.has_occlusion and not _in_range(gt.occ_score[g], o_lo, o_hi))
                for j, g in enumerate(g_idx)
            ]
            gt_ignored[a, o] = ignore
            for t, thr in enumerate(thresholds):
                for i, m in enumerate(greedy_match(ious, ignore, crowd, thr)):
                    if m is not None:
                        dt_matched[a, o, t, i] = True
                        dt_ignored[a, o, t, i] = ignore[m]
                        dt_gt[a, o, t, i] = m
                    elif not _in_range(res.avg_area[d_idx[i]], a_lo, a_hi):
                        # Step 10: unmatched results outside the area range are ignored.
                        dt_ignored[a, o, t, i] = True
    return _PairEval(
        scores=np.asarray([res.score[d] for d in d_idx], dtype=np.float64),
        dt_matched=dt_matched,
        dt_ignored=dt_ignored,
        gt_ignored=gt_ignored,
        dt_gt=dt_gt,
    )


def _curve(tp_sum, fp_sum, scores, npig, rec_thrs):
    """Step 11 for one curve: ``(precision[R], recall, scores[R])``."""
    rc = tp_sum / npig
    pr = (tp_sum / (fp_sum + tp_sum + EPS)).tolist()
    recall = rc[-1] if tp_sum.shape[0] else 0.0
    for i in range(len(pr) - 1, 0, -1):
        if pr[i] > pr[i - 1]:
            pr[i - 1] = pr[i]
    inds = np.searchsorted(rc, rec_thrs, side="left")
    q = np.zeros(rec_thrs.shape[0])
    ss = np.zeros(rec_thrs.shape[0])
    for ri, pi in enumerate(inds):
        if pi < len(pr):
            q[ri] = pr[pi]
            ss[ri] = scores[pi]
    return q, recall, ss


def _accumulate(evals, video_ids, cat_ids, params: EvalParams, n_o: int):
    """Step 11: precision [T, R, K, A, O, M], recall [T, K, A, O, M], scores [T, R, K, A, O, M]."""
    n_t, n_r = len(params.iou_thresholds), len(params.recall_thresholds)
    n_k, n_a = len(cat_ids), len(params.area_ranges)
    n_m = len(params.max_dets)
    precision = -np.ones((n_t, n_r, n_k, n_a, n_o, n_m))
    recall = -np.ones((n_t, n_k, n_a, n_o, n_m))
    scores_out = -np.ones((n_t, n_r, n_k, n_a, n_o, n_m))
    rec_thrs = params.recall_array
    for ki, k in enumerate(cat_ids):
        pair_evals = [evals[(v, k)] for v in video_ids if (v, k) in evals]
        if not pair_evals:
            continue
        for a in range(n_a):
            for o in range(n_o):
                gt_ig = np.concatenate([e.gt_ignored[a, o] for e in pair_evals])
                npig = int(np.count_nonzero(~gt_ig))
                if npig == 0:
                    continue
                for mi, max_det in enumerate(params.max_dets):
                    scores = np.concatenate([e.scores[:max_det] for e in pair_evals])
                    order = np.argsort(-scores, kind="mergesort")
                    matched = np.concatenate(
                        [e.dt_matched[a, o, :, :max_det] for e in pair_evals], axis=1
                    )[:, order]
                    ignored = np.concatenate(
                        [e.dt_ignored[a, o, :, :max_det] for e in pair_evals], axis=1
                    )[:, order]
                    tp_sum = np.cumsum(matched & ~ignored, axis=1).astype(np.float64)
                    fp_sum = np.cumsum(~matched & ~ignored, axis=1).astype(np.float64)
                    for t in range(n_t):
                        q, rc, ss = _curve(tp_sum[t], fp_sum[t], scores[order], npig, rec_thrs)
                        precision[t, :, ki, a, o, mi] = q
                        recall[t, ki, a, o, mi] = rc
                        scores_out[t, :, ki, a, o, mi] = ss
    return precision, recall, scores_out


def _reference_matches(gt: GroundTruth, res: Results, pairs, evals, params: EvalParams):
    """The per-result :class:`~ovis_jax.Matches` from the plain matching (area and occlusion
    range "all"): the ground truth at the 0.5 threshold, IoUs, matched flags."""
    from ovis_jax._src.metrics.matches import assemble_matches, threshold_index

    t0 = threshold_index(params)
    n_t = len(params.iou_thresholds)
    index, gt_track, iou, matched = [], [], [], []
    for key, pair in pairs.items():
        e = evals[key]
        for i, d in enumerate(pair.d_idx):
            m = int(e.dt_gt[0, 0, t0, i])
            index.append(d)
            gt_track.append(pair.g_idx[m] if m >= 0 else -1)
            if m >= 0:
                iou.append(pair.ious[i, m])
            else:
                iou.append(pair.ious[i].max() if pair.g_idx else np.nan)
            matched.append(e.dt_gt[0, 0, :, i] >= 0)
        for d in pair.overflow:  # never evaluated: no match; best IoU all the same
            index.append(d)
            gt_track.append(-1)
            best = [track_iou(res.rles[d], gt.rles[g]) for g in pair.g_idx]
            iou.append(max(best) if best else np.nan)
            matched.append(np.zeros(n_t, dtype=bool))
    return assemble_matches(
        gt,
        res,
        index=np.asarray(index, dtype=np.int64),
        gt_track=np.asarray(gt_track, dtype=np.int64),
        iou=np.asarray(iou, dtype=np.float64),
        matched=np.asarray(matched, dtype=bool).reshape(len(index), n_t),
    )


def evaluate_reference(
    gt: GroundTruth,
    results: Results,
    *,
    params: EvalParams | None = None,
    lengths: bool = True,
    matches: bool = False,
) -> EvalResult:
    """Evaluates results against ground truth with the plain reference algorithm.

    Args:
        gt: validated ground truth.
        results: validated results for it.
        params: evaluation parameters (the official ones by default).
        lengths: also run the track-length pass (track lengths and length ranges in place of
            average areas and area ranges, same IoUs).
        matches: also record each result's matching (``EvalResult.matches``).

    Returns:
        The :class:`EvalResult`, with precision float64[T, R, K, A, O, M] and recall
        float64[T, K, A, O, M].
    """
    params = params or EvalParams()
    video_ids = [v.id for v in gt.videos]  # ascending
    cat_ids = [int(c) for c in gt.category_ids]  # ascending
    gts: dict[tuple[int, int], list[int]] = {}
    for g in range(gt.ann_id.shape[0]):
        gts.setdefault((int(gt.video_id[g]), int(gt.category_id[g])), []).append(g)
    dts: dict[tuple[int, int], list[int]] = {}
    for d in range(results.result_id.shape[0]):
        dts.setdefault((int(results.video_id[d]), int(results.category_id[d])), []).append(d)

    # Steps 5-6, per (video, category) pair that has something.
    pairs: dict[tuple[int, int], _Pair] = {}
    progress.stage(logger, "decode")  # masks are decoded pair by pair, with the intersections
    progress.stage(logger, "intersections")
    for i, v in enumerate(video_ids):
        for k in cat_ids:
            g_idx, d_idx = gts.get((v, k), []), dts.get((v, k), [])
            if g_idx or d_idx:
                pairs[(v, k)] = _pair_ious(gt, results, g_idx, d_idx, params)
        progress.report(logger, i + 1, len(video_ids), "videos matched")

    # Steps 7-11.
    progress.stage(logger, "matching")
    n_o = params.occlusion_bounds(gt.has_occlusion).shape[0]
    evals = {key: _match_pair(gt, results, p, params) for key, p in pairs.items()}
    precision, recall, scores = _accumulate(evals, video_ids, cat_ids, params, n_o)
    length = None
    if lengths:
        gt_l, res_l, params_l = length_views(gt, results, params)
        evals_l = {key: _match_pair(gt_l, res_l, p, params_l) for key, p in pairs.items()}
        lp, lr, _ = _accumulate(evals_l, video_ids, cat_ids, params_l, 1)
        length = (params_l, lp, lr)
    found = _reference_matches(gt, results, pairs, evals, params) if matches else None
    out = result_from_arrays(
        gt, precision, recall, params=params, warnings=results.warnings, scores=scores,
        length=length,
    )  # fmt: skip
    return dataclasses.replace(out, matches=found)
