"""CLEAR MOT metrics (MOTA, MOTP, ...) exactly as TrackEval 1.3.0's ``metrics/clear.py``.

Per frame with detections on both sides, a Hungarian matching that first keeps the match of
each gt id from the previous such frame (bonus 1000) and then maximises similarity; pairs
below the threshold 0.5 never match. Frames with one side empty only add to the counts and,
as in TrackEval, leave the "previous frame" state untouched. One-by-one frames take a scalar
path with the same arithmetic.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy.optimize import linear_sum_assignment

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
    count per gt id, fragment starts per gt id)."""
    prev_id = np.full(data.num_gt_ids, np.nan)  # last matched tracker id (IDSW)
    prev_step = np.full(data.num_gt_ids, np.nan)  # matches of the previous such frame
    matched = np.zeros(data.num_gt_ids)
    frag = np.zeros(data.num_gt_ids)
    tp, idsw, motp = 0, 0, 0.0
    last: list[int] = []  # gt ids with a non-NaN prev_step
    for t in fv.both.tolist():
        if fv.n_gt[t] == 1 and fv.n_tracker[t] == 1:
            g = int(data.gt_id[fv.gt_start[t]])
            d = int(data.tracker_id[fv.tracker_start[t]])
            s = float(data.similarity[fv.pair_start[t]])
            score = 0.0 if s < THRESHOLD - EPS else 1000 * int(prev_step[g] == d) + s
            m_g, m_d, m_s = ([g], [d], [s]) if score > EPS else ([], [], [])
        else:
            gt_ids, tr_ids, sim = fv.frame(data, t)
            rows, cols = _match_frame(gt_ids, tr_ids, sim, prev_step)
            m_g, m_d = gt_ids[rows].tolist(), tr_ids[cols].tolist()
            m_s = sim[rows, cols].tolist()
        for g, d in zip(m_g, m_d, strict=True):
            p = prev_id[g]
            idsw += int(not math.isnan(p) and d != p)
            frag[g] += math.isnan(prev_step[g])
            prev_id[g] = d
        prev_step[last] = np.nan
        prev_step[m_g] = m_d
        last = m_g
        matched[m_g] += 1
        tp += len(m_g)
        motp += sum(m_s)
    return tp, motp, idsw, matched, frag


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
