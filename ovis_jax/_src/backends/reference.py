"""The CPU reference evaluator: the algorithm of "The metric" written out step by step.

NumPy plus ``pycocotools.mask`` operations, plain loops, no cleverness: this is the oracle the
JAX backend is tested against, so clarity wins over speed. Step numbers refer to
the README's "The metric".
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging

import numpy as np

from ovis_jax._src import progress
from ovis_jax._src.io.model import GroundTruth, Results
from ovis_jax._src.metrics.ap.curves import CurveLayout
from ovis_jax._src.params import EvalParams
from ovis_jax._src.similarity.reference import frame_ious, track_iou

__all__ = ["ReferenceBackend", "greedy_match", "match_pair", "pair_with_ious", "track_iou"]

logger = logging.getLogger(__name__)

EPS = np.spacing(1)  # 2.220446049250313e-16


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


def _ranked_pair(res: Results, g_idx: list[int], d_idx: list[int], max_det: int) -> _Pair:
    """Step 5: results by score, highest first, stable; keep the first ``max_det``."""
    order = sorted(range(len(d_idx)), key=lambda i: -res.score[d_idx[i]])
    ranked = [d_idx[i] for i in order]
    d_idx, overflow = ranked[:max_det], ranked[max_det:]
    return _Pair(d_idx=d_idx, g_idx=g_idx, ious=np.zeros((0, 0)), overflow=overflow)


def pair_with_ious(gt: GroundTruth, res: Results, g_idx, d_idx, params: EvalParams) -> _Pair:
    """Steps 5-6 for one (video, category) pair: ranked, cut results and their IoUs."""
    return _with_ious(gt, res, _ranked_pair(res, g_idx, d_idx, params.max_dets[-1]))


def _with_ious(gt: GroundTruth, res: Results, pair: _Pair) -> _Pair:
    """Step 6: the pair's track IoUs, float64[D, G]."""
    ious = np.zeros((len(pair.d_idx), len(pair.g_idx)))
    for i, d in enumerate(pair.d_idx):
        for j, g in enumerate(pair.g_idx):
            ious[i, j] = track_iou(res.rles[d], gt.rles[g])
    return dataclasses.replace(pair, ious=ious)


def match_pair(gt: GroundTruth, res: Results, pair: _Pair, params: EvalParams) -> _PairEval:
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


def _accumulate(evals, video_ids, cat_ids, params: EvalParams, n_o: int, layout=None):
    """Step 11 in ``layout`` (its kept categories and (area, occlusion, maxDet) slots; all by
    default): precision [T, R, K, I], recall [T, K, I], scores [T, R, K, I]."""
    n_t, n_r = len(params.iou_thresholds), len(params.recall_thresholds)
    n_a, n_m = len(params.area_ranges), len(params.max_dets)
    if layout is None:
        layout = CurveLayout.full(len(cat_ids), (n_a, n_o, n_m))
    n_j, n_s = layout.cats.shape[0], layout.num_slots
    precision = -np.ones((n_t, n_r, n_j, n_s))
    recall = -np.ones((n_t, n_j, n_s))
    scores_out = -np.ones((n_t, n_r, n_j, n_s))
    rec_thrs = params.recall_array
    for ki, k in enumerate(cat_ids[c] for c in layout.cats):
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
                    s = layout.slots[a, o, mi]
                    if s < 0:
                        continue
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
                        precision[t, :, ki, s] = q
                        recall[t, ki, s] = rc
                        scores_out[t, :, ki, s] = ss
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


def _plan(gt: GroundTruth, results: Results, params: EvalParams) -> dict:
    """Step 5 for every (video, category) pair that has something, in ascending order."""
    gts: dict[tuple[int, int], list[int]] = {}
    for g in range(gt.ann_id.shape[0]):
        gts.setdefault((int(gt.video_id[g]), int(gt.category_id[g])), []).append(g)
    dts: dict[tuple[int, int], list[int]] = {}
    for d in range(results.result_id.shape[0]):
        dts.setdefault((int(results.video_id[d]), int(results.category_id[d])), []).append(d)
    pairs: dict[tuple[int, int], _Pair] = {}
    for v in (v.id for v in gt.videos):  # ascending
        for k in (int(c) for c in gt.category_ids):  # ascending
            g_idx, d_idx = gts.get((v, k), []), dts.get((v, k), [])
            if g_idx or d_idx:
                pairs[(v, k)] = _ranked_pair(results, g_idx, d_idx, params.max_dets[-1])
    return pairs


class ReferenceBackend:
    """The ``reference`` backend: the pipeline's stages written out plainly (the oracle)."""

    name = "reference"

    def context(self) -> contextlib.AbstractContextManager:
        return contextlib.nullcontext()

    def plan(self, gt: GroundTruth, results: Results, params: EvalParams) -> dict:
        return _plan(gt, results, params)

    def track_ious(self, gt: GroundTruth, results: Results, plan: dict) -> dict:
        """The plan's pairs with their IoUs (masks decoded pair by pair, by pycocotools)."""
        out, video_ids = {}, [v.id for v in gt.videos]
        done = 0
        for key, pair in plan.items():
            out[key] = _with_ious(gt, results, pair)
            while done < len(video_ids) and video_ids[done] < key[0]:
                done += 1
                progress.report(logger, done, len(video_ids), "videos matched")
        progress.report(logger, len(video_ids), len(video_ids), "videos matched")
        return out

    def match(self, gt, results, plan: dict, ious: dict, params: EvalParams) -> dict:
        return {key: match_pair(gt, results, pair, params) for key, pair in ious.items()}

    def accumulate(
        self, gt, results, plan: dict, flags: dict, params: EvalParams, *, scores, layout=None
    ):
        n_o = params.occlusion_bounds(gt.has_occlusion).shape[0]
        video_ids = [v.id for v in gt.videos]
        cat_ids = [int(c) for c in gt.category_ids]
        precision, recall, out_scores = _accumulate(flags, video_ids, cat_ids, params, n_o, layout)
        return precision, recall, (out_scores if scores else None)

    def match_records(self, gt, results, plan: dict, ious: dict, params: EvalParams):
        evals = self.match(gt, results, plan, ious, params)
        return _reference_matches(gt, results, ious, evals, params)

    def pair_ious(self, gt: GroundTruth, results: Results, groups) -> np.ndarray:
        pair_d, pair_g = groups.pairs()
        return np.asarray(
            [
                track_iou(results.rles[d], gt.rles[g])
                for d, g in zip(pair_d.tolist(), pair_g.tolist(), strict=True)
            ],
            dtype=np.float64,
        )

    def greedy(self, ious, ignore, crowd, threshold: float) -> np.ndarray:
        found = greedy_match(ious, list(ignore), list(crowd), threshold)
        return np.asarray([-1 if m is None else m for m in found], dtype=np.int64)

    def frame_ious(self, gt, results, d: np.ndarray, g: np.ndarray):
        return frame_ious(results, gt, d, g)
