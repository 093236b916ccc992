"""CLEAR MOT metrics (MOTA, MOTP, ...) exactly as TrackEval 1.3.0's ``metrics/clear.py``.

Per frame with detections on both sides, a Hungarian matching that first keeps the match of
each gt id from the previous such frame (bonus 1000) and then maximises similarity; pairs
below the threshold 0.5 never match. Frames with one side empty only add to the counts and,
as in TrackEval, leave the "previous frame" state untouched. The walk is compiled
(:mod:`~ovis_jax._src.metrics.tracking.kernels`); frames whose optimal assignment is not
unique run ``linear_sum_assignment`` on TrackEval's score matrix.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.optimize import linear_sum_assignment

from ovis_jax._src.metrics.tracking import kernels as K
from ovis_jax._src.metrics.tracking.base import EPS, SequenceData, class_mean, combine_sum

__all__ = [
    "FIELDS",
    "THRESHOLD",
    "combine_class_averaged",
    "combine_det_averaged",
    "combine_sequences",
    "eval_sequence",
]  # fmt: skip

THRESHOLD = 0.5
INTEGER_FIELDS = ("CLR_TP", "CLR_FN", "CLR_FP", "IDSW", "MT", "PT", "ML", "Frag", "CLR_Frames")
FLOAT_FIELDS = ("MOTA", "MOTP", "MODA", "CLR_Re", "CLR_Pr", "MTR", "PTR", "MLR", "sMOTA",
                "CLR_F1", "FP_per_frame", "MOTAL", "MOTP_sum")  # fmt: skip
#: Every key, in TrackEval's order.
FIELDS = FLOAT_FIELDS + INTEGER_FIELDS
_SUMMED = (*INTEGER_FIELDS, "MOTP_sum")


def _empty(data: SequenceData) -> dict:
    """TrackEval's early return (no final fields: combining computes them)."""
    res = dict.fromkeys(FIELDS, 0)
    if data.num_tracker_dets == 0:
        res["CLR_FN"] = data.num_gt_dets
        res["ML"] = data.num_gt_ids
    else:
        res["CLR_FP"] = data.num_tracker_dets
    res["MLR"] = 1.0
    return res


def _match_frame(gt_ids, tr_ids, sim, prev_step: np.ndarray):
    """The matched rows and columns of one frame (TrackEval's score matrix and Hungarian)."""
    score = tr_ids[np.newaxis, :] == prev_step[gt_ids[:, np.newaxis]]
    score = 1000 * score + sim
    score[sim < THRESHOLD - EPS] = 0
    rows, cols = linear_sum_assignment(-score)
    keep = score[rows, cols] > 0 + EPS
    return rows[keep], cols[keep]


def _walk(data: SequenceData, fv):
    """The sequential part over the frames with both sides: (tp, motp_sum, idsw, matched
    count per gt id, fragment starts per gt id).

    The compiled walk decides every frame whose optimal assignment is unique and stops at the
    others, which run ``linear_sum_assignment`` here on TrackEval's score matrix."""
    n_g = data.num_gt_ids
    prev_id = np.full(n_g, -1, dtype=np.int64)  # last matched tracker id (IDSW); -1: none
    prev_step = np.full(n_g, -1, dtype=np.int64)  # matches of the previous such frame
    matched, frag, last = (np.zeros(n_g, dtype=np.int64) for _ in range(3))
    state_i, state_f = np.zeros(3, dtype=np.int64), np.zeros(1)
    state = (state_i, state_f, prev_id, prev_step, matched, frag, last)
    k = 0
    while True:
        k = K.clear_walk(
            data.similarity, data.gt_id, data.tracker_id, fv.gt_start, fv.tracker_start,
            fv.pair_start, fv.both, fv.n_gt, fv.n_tracker, k, THRESHOLD, *state,
        )  # fmt: skip
        if k >= fv.both.shape[0]:
            break
        gt_ids, tr_ids, sim = fv.frame(data, int(fv.both[k]))
        rows, cols = _match_frame(gt_ids, tr_ids, sim, prev_step)
        K.clear_apply(gt_ids[rows], tr_ids[cols], sim[rows, cols], *state)
        k += 1
    tp, idsw = int(state_i[0]), int(state_i[1])
    return tp, float(state_f[0]), idsw, matched.astype(np.float64), frag.astype(np.float64)


def eval_sequence(data: SequenceData) -> dict:
    """TrackEval's ``CLEAR.eval_sequence``."""
    if data.num_tracker_dets == 0 or data.num_gt_dets == 0:
        return _empty(data)
    fv = data.frames()
    tp, motp, idsw, matched, frag = _walk(data, fv)
    count = np.bincount(data.gt_id, minlength=data.num_gt_ids).astype(np.float64)
    ratio = matched[count > 0] / count[count > 0]
    res = dict.fromkeys(FIELDS, 0)
    res.update(CLR_TP=tp, CLR_FN=data.num_gt_dets - tp, CLR_FP=data.num_tracker_dets - tp,
               IDSW=idsw, MOTP_sum=motp, CLR_Frames=data.num_timesteps)  # fmt: skip
    res["MT"] = int(np.sum(np.greater(ratio, 0.8)))
    res["PT"] = int(np.sum(np.greater_equal(ratio, 0.2))) - res["MT"]
    res["ML"] = data.num_gt_ids - res["MT"] - res["PT"]
    res["Frag"] = int(np.sum(frag[frag > 0] - 1))
    return _final(res)


def _final(res: dict) -> dict:
    """TrackEval's ``_compute_final_fields``."""
    n_ids = res["MT"] + res["ML"] + res["PT"]
    tp, fn, fp, idsw = res["CLR_TP"], res["CLR_FN"], res["CLR_FP"], res["IDSW"]
    gt = np.maximum(1.0, tp + fn)
    res["MTR"] = res["MT"] / np.maximum(1.0, n_ids)
    res["MLR"] = res["ML"] / np.maximum(1.0, n_ids)
    res["PTR"] = res["PT"] / np.maximum(1.0, n_ids)
    res["CLR_Re"] = tp / gt
    res["CLR_Pr"] = tp / np.maximum(1.0, tp + fp)
    res["MODA"] = (tp - fp) / gt
    res["MOTA"] = (tp - fp - idsw) / gt
    res["MOTP"] = res["MOTP_sum"] / np.maximum(1.0, tp)
    res["sMOTA"] = (res["MOTP_sum"] - fp - idsw) / gt
    res["CLR_F1"] = tp / np.maximum(1.0, tp + 0.5 * fn + 0.5 * fp)
    res["FP_per_frame"] = fp / np.maximum(1.0, res["CLR_Frames"])
    safe_log = np.log10(idsw) if idsw > 0 else idsw
    res["MOTAL"] = (tp - fp - safe_log) / gt
    return res


def combine_sequences(all_res: Sequence[dict]) -> dict:
    """Sequences (or classes, detection-averaged) combined: sums, then the final fields."""
    return _final({f: combine_sum(all_res, f) for f in _SUMMED})


combine_det_averaged = combine_sequences


def combine_class_averaged(all_res: Sequence[dict]) -> dict:
    """``cls_comb_cls_av``: integer fields summed, float fields the mean over the classes."""
    res = {f: combine_sum(all_res, f) for f in INTEGER_FIELDS}
    res.update({f: class_mean(all_res, f) for f in FLOAT_FIELDS})
    return res
