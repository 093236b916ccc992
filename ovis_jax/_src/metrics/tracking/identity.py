"""Identity metrics (IDF1, IDR, IDP) exactly as TrackEval 1.3.0's ``metrics/identity.py``.

One Hungarian matching per sequence between gt ids and tracker ids, on the counts of frames
where a pair's similarity is >= 0.5 (fully vectorised: the counts are integers).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.optimize import linear_sum_assignment

from ovis_jax._src.metrics.tracking.base import SequenceData, class_mean, combine_sum

__all__ = [
    "FIELDS",
    "THRESHOLD",
    "combine_class_averaged",
    "combine_det_averaged",
    "combine_sequences",
    "eval_sequence",
]  # fmt: skip

THRESHOLD = 0.5
INTEGER_FIELDS = ("IDTP", "IDFN", "IDFP")
FLOAT_FIELDS = ("IDF1", "IDR", "IDP")
#: Every key, in TrackEval's order.
FIELDS = FLOAT_FIELDS + INTEGER_FIELDS


def eval_sequence(data: SequenceData) -> dict:
    """TrackEval's ``Identity.eval_sequence``."""
    res = dict.fromkeys(FIELDS, 0)
    if data.num_tracker_dets == 0:
        res["IDFN"] = data.num_gt_dets
        return res
    if data.num_gt_dets == 0:
        res["IDFP"] = data.num_tracker_dets
        return res
    fv = data.frames()
    n_g, n_d = data.num_gt_ids, data.num_tracker_ids
    hit = data.similarity >= THRESHOLD
    gi = data.gt_id[fv.gt_start[data.pair_frame[hit]] + data.pair_gt[hit]]
    ti = data.tracker_id[fv.tracker_start[data.pair_frame[hit]] + data.pair_tracker[hit]]
    potential = np.bincount(gi * n_d + ti, minlength=n_g * n_d).reshape(n_g, n_d).astype(float)
    gt_count = np.bincount(data.gt_id, minlength=n_g).astype(np.float64)
    tr_count = np.bincount(data.tracker_id, minlength=n_d).astype(np.float64)
    fp = np.zeros((n_g + n_d, n_g + n_d))
    fn = np.zeros((n_g + n_d, n_g + n_d))
    fp[n_g:, :n_d] = 1e10
    fn[:n_g, n_d:] = 1e10
    fn[:n_g, :n_d] = gt_count[:, None]
    fn[np.arange(n_g), n_d + np.arange(n_g)] = gt_count
    fp[:n_g, :n_d] = tr_count[None, :]
    fp[n_g + np.arange(n_d), np.arange(n_d)] = tr_count
    fn[:n_g, :n_d] -= potential
    fp[:n_g, :n_d] -= potential
    rows, cols = linear_sum_assignment(fn + fp)
    res["IDFN"] = int(fn[rows, cols].sum())
    res["IDFP"] = int(fp[rows, cols].sum())
    res["IDTP"] = int(gt_count.sum()) - res["IDFN"]
    return _final(res)


def _final(res: dict) -> dict:
    """TrackEval's ``_compute_final_fields``."""
    tp, fn, fp = res["IDTP"], res["IDFN"], res["IDFP"]
    res["IDR"] = tp / np.maximum(1.0, tp + fn)
    res["IDP"] = tp / np.maximum(1.0, tp + fp)
    res["IDF1"] = tp / np.maximum(1.0, tp + 0.5 * fp + 0.5 * fn)
    return res


def combine_sequences(all_res: Sequence[dict]) -> dict:
    """Sequences (or classes, detection-averaged) combined: sums, then the final fields."""
    return _final({f: combine_sum(all_res, f) for f in INTEGER_FIELDS})


combine_det_averaged = combine_sequences


def combine_class_averaged(all_res: Sequence[dict]) -> dict:
    """``cls_comb_cls_av``: integer fields summed, float fields the mean over the classes."""
    res = {f: combine_sum(all_res, f) for f in INTEGER_FIELDS}
    res.update({f: class_mean(all_res, f) for f in FLOAT_FIELDS})
    return res
