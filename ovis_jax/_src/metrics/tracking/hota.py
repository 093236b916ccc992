"""HOTA (Luiten et al., IJCV 2020) exactly as TrackEval 1.3.0's ``metrics/hota.py``.

Per sequence: a global alignment score per (gt id, tracker id) from the per-frame
similarities, per frame a Hungarian matching (``scipy.optimize.linear_sum_assignment``) of
``alignment * similarity``, then per alpha in 0.05..0.95 the matches with similarity >= alpha.
The matrices given to the Hungarian step are built with the same NumPy operations in the same
order as TrackEval's, so ties break the same way. The per-frame loops are compiled
(:mod:`~ovis_jax._src.metrics.tracking.kernels`): frames whose optimal assignment is unique
are decided there, the others run ``linear_sum_assignment``; the alpha loop is vectorised.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.optimize import linear_sum_assignment

from ovis_jax._src.metrics.tracking import kernels as K
from ovis_jax._src.metrics.tracking.base import (
    EPS,
    SequenceData,
    class_mean,
    combine_sum,
    combine_weighted_av,
)

__all__ = [
    "ALPHAS",
    "FIELDS",
    "combine_class_averaged",
    "combine_det_averaged",
    "combine_sequences",
    "eval_sequence",
]  # fmt: skip

#: float64[T] the 19 alpha thresholds (TrackEval's ``np.arange(0.05, 0.99, 0.05)``).
ALPHAS = np.arange(0.05, 0.99, 0.05)
INTEGER_ARRAY_FIELDS = ("HOTA_TP", "HOTA_FN", "HOTA_FP")
FLOAT_ARRAY_FIELDS = ("HOTA", "DetA", "AssA", "DetRe", "DetPr", "AssRe", "AssPr", "LocA", "OWTA")
FLOAT_FIELDS = ("HOTA(0)", "LocA(0)", "HOTALocA(0)")
#: Every key, in TrackEval's order.
FIELDS = FLOAT_ARRAY_FIELDS + INTEGER_ARRAY_FIELDS + FLOAT_FIELDS


def _empty(data: SequenceData) -> dict:
    """TrackEval's early return for a sequence without tracker or without gt detections."""
    a = ALPHAS.shape[0]
    res = {f: np.zeros(a) for f in FLOAT_ARRAY_FIELDS + INTEGER_ARRAY_FIELDS}
    res.update({f: 0 for f in FLOAT_FIELDS})
    if data.num_tracker_dets == 0:
        res["HOTA_FN"] = data.num_gt_dets * np.ones(a)
    else:
        res["HOTA_FP"] = data.num_tracker_dets * np.ones(a)
    res["LocA"] = np.ones(a)
    res["LocA(0)"] = 1.0
    return res


def _sim_iou(sim: np.ndarray) -> np.ndarray:
    """TrackEval's per-frame normalised similarity (same operations, same order)."""
    denom = sim.sum(0)[np.newaxis, :] + sim.sum(1)[:, np.newaxis] - sim
    out = np.zeros_like(sim)
    mask = denom > 0 + EPS
    out[mask] = sim[mask] / denom[mask]
    return out


def _alignment(data: SequenceData, fv) -> np.ndarray:
    """float64[G, D] global alignment score (G gt ids, D tracker ids), with the gt and
    tracker detection counts float64[G, 1] and float64[1, D]."""
    norm = np.zeros_like(data.similarity)
    K.hota_norm(data.similarity, fv.pair_start, fv.both, fv.n_gt, fv.n_tracker, norm)
    gi = data.gt_id[fv.gt_start[data.pair_frame] + data.pair_gt]
    ti = data.tracker_id[fv.tracker_start[data.pair_frame] + data.pair_tracker]
    potential = np.zeros((data.num_gt_ids, data.num_tracker_ids))
    # Entries are in frame order and ids are unique per frame: the same sums as frame by frame.
    K.add_pairs(potential, gi, ti, norm)
    gt_count = np.bincount(data.gt_id, minlength=data.num_gt_ids).astype(np.float64)[:, None]
    tr_count = np.bincount(data.tracker_id, minlength=data.num_tracker_ids).astype(np.float64)
    return potential / (gt_count + tr_count[None, :] - potential), gt_count, tr_count[None, :]


def _matches(data: SequenceData, fv, align: np.ndarray):
    """Per frame the Hungarian matches: int64 gt ids, tracker ids and float64 similarities.

    Frames whose optimal assignment is unique are decided by the kernel; the others run
    ``linear_sum_assignment`` on TrackEval's score matrix."""
    n = data.similarity.shape[0]
    mg, mt = np.zeros(n, dtype=np.int64), np.zeros(n, dtype=np.int64)
    ms, hard = np.zeros(n), np.zeros(fv.both.shape[0], dtype=np.int64)
    k, n_hard = K.hota_matches(
        data.similarity, align, data.gt_id, data.tracker_id, fv.gt_start, fv.tracker_start,
        fv.pair_start, fv.both, fv.n_gt, fv.n_tracker, mg, mt, ms, hard,
    )  # fmt: skip
    parts_g, parts_t, parts_s = [mg[:k]], [mt[:k]], [ms[:k]]
    for t in hard[:n_hard].tolist():
        gt_ids, tr_ids, sim = fv.frame(data, t)
        score = align[gt_ids[:, np.newaxis], tr_ids[np.newaxis, :]] * sim
        rows, cols = linear_sum_assignment(-score)
        parts_g.append(gt_ids[rows])
        parts_t.append(tr_ids[cols])
        parts_s.append(sim[rows, cols])
    return np.concatenate(parts_g), np.concatenate(parts_t), np.concatenate(parts_s)


def _alpha_counts(data: SequenceData, mg, mt, ms) -> np.ndarray:
    """float64[T, G, D] per alpha the matches of each (gt id, tracker id) with similarity
    ``>= alpha - EPS`` (alphas ascend, so a match counts for a prefix of them)."""
    n_a = ALPHAS.shape[0]
    n_pass = (ms[:, None] >= (ALPHAS - EPS)[None, :]).sum(axis=1)
    shape = (data.num_gt_ids, data.num_tracker_ids)
    flat = np.ravel_multi_index((mg, mt), shape) * (n_a + 1) + n_pass
    hist = np.bincount(flat, minlength=shape[0] * shape[1] * (n_a + 1))
    hist = hist.reshape(shape[0] * shape[1], n_a + 1)
    # counts for alpha a: matches passing more than a alphas.
    counts = np.cumsum(hist[:, ::-1], axis=1)[:, ::-1][:, 1:]
    return counts.T.reshape(n_a, *shape).astype(np.float64)


def eval_sequence(data: SequenceData) -> dict:
    """TrackEval's ``HOTA.eval_sequence``: every field (arrays float64[T] over the alphas)."""
    if data.num_tracker_dets == 0 or data.num_gt_dets == 0:
        return _empty(data)
    fv = data.frames()
    align, gt_count, tr_count = _alignment(data, fv)
    mg, mt, ms = _matches(data, fv, align)
    res = {}
    counts = _alpha_counts(data, mg, mt, ms)
    tp = counts.sum(axis=(1, 2))
    res["HOTA_TP"] = tp
    res["HOTA_FN"] = data.num_gt_dets - tp
    res["HOTA_FP"] = data.num_tracker_dets - tp
    ok = ms[:, None] >= (ALPHAS - EPS)[None, :]
    loca = np.where(ok, ms[:, None], 0.0).sum(axis=0)
    ass_a = counts / np.maximum(1, gt_count + tr_count - counts)
    w = np.maximum(1, tp)
    res["AssA"] = np.sum(counts * ass_a, axis=(1, 2)) / w
    res["AssRe"] = np.sum(counts * (counts / np.maximum(1, gt_count)), axis=(1, 2)) / w
    res["AssPr"] = np.sum(counts * (counts / np.maximum(1, tr_count)), axis=(1, 2)) / w
    res["LocA"] = np.maximum(1e-10, loca) / np.maximum(1e-10, tp)
    return _final(res)


def _final(res: dict) -> dict:
    """TrackEval's ``_compute_final_fields``."""
    tp, fn, fp = res["HOTA_TP"], res["HOTA_FN"], res["HOTA_FP"]
    res["DetRe"] = tp / np.maximum(1, tp + fn)
    res["DetPr"] = tp / np.maximum(1, tp + fp)
    res["DetA"] = tp / np.maximum(1, tp + fn + fp)
    res["HOTA"] = np.sqrt(res["DetA"] * res["AssA"])
    res["OWTA"] = np.sqrt(res["DetRe"] * res["AssA"])
    res["HOTA(0)"] = res["HOTA"][0]
    res["LocA(0)"] = res["LocA"][0]
    res["HOTALocA(0)"] = res["HOTA(0)"] * res["LocA(0)"]
    return res


def combine_sequences(all_res: Sequence[dict]) -> dict:
    """Sequences (or classes, detection-averaged) combined as TrackEval does."""
    res = {f: combine_sum(all_res, f) for f in INTEGER_ARRAY_FIELDS}
    for f in ("AssRe", "AssPr", "AssA"):
        res[f] = combine_weighted_av(all_res, f, res, "HOTA_TP")
    loca = sum(r["LocA"] * r["HOTA_TP"] for r in all_res)
    res["LocA"] = np.maximum(1e-10, loca) / np.maximum(1e-10, res["HOTA_TP"])
    return _final(res)


#: ``cls_comb_det_av``: the same as combining sequences.
combine_det_averaged = combine_sequences


def combine_class_averaged(all_res: Sequence[dict]) -> dict:
    """``cls_comb_cls_av``: counts summed, every other field the mean over the classes."""
    res = {f: combine_sum(all_res, f) for f in INTEGER_ARRAY_FIELDS}
    res.update({f: class_mean(all_res, f) for f in FLOAT_FIELDS + FLOAT_ARRAY_FIELDS})
    return res
