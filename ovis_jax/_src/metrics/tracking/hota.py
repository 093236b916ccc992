"""HOTA (Luiten et al., IJCV 2020) exactly as TrackEval 1.3.0's ``metrics/hota.py``.

Per sequence: a global alignment score per (gt id, tracker id) from the per-frame
similarities, per frame a Hungarian matching (``scipy.optimize.linear_sum_assignment``) of
``alignment * similarity``, then per alpha in 0.05..0.95 the matches with similarity >= alpha.
The matrices given to the Hungarian step are built with the same NumPy operations in the same
order as TrackEval's, so ties break the same way. Frames with one detection on each side
(most frames) take a vectorised path with bit-identical values.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.optimize import linear_sum_assignment

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
    """float64[G, D] global alignment score (G gt ids, D tracker ids)."""
    single = (fv.n_gt[fv.both] == 1) & (fv.n_tracker[fv.both] == 1)
    # Per pair entry its normalised similarity; one-by-one frames: s / ((s + s) - s) = 1 or 0.
    norm = (data.similarity > EPS).astype(np.float64)
    for t in fv.both[~single].tolist():
        p0, p1 = fv.pair_start[t], fv.pair_start[t + 1]
        n_g, n_d = int(fv.n_gt[t]), int(fv.n_tracker[t])
        sim = data.similarity[p0:p1].reshape(n_d, n_g).T
        norm[p0:p1] = _sim_iou(sim).T.reshape(-1)
    gi = data.gt_id[fv.gt_start[data.pair_frame] + data.pair_gt]
    ti = data.tracker_id[fv.tracker_start[data.pair_frame] + data.pair_tracker]
    potential = np.zeros((data.num_gt_ids, data.num_tracker_ids))
    # Entries are in frame order and ids are unique per frame: the same sums as frame by frame.
    np.add.at(potential, (gi, ti), norm)
    gt_count = np.bincount(data.gt_id, minlength=data.num_gt_ids).astype(np.float64)[:, None]
    tr_count = np.bincount(data.tracker_id, minlength=data.num_tracker_ids).astype(np.float64)
    return potential / (gt_count + tr_count[None, :] - potential), gt_count, tr_count[None, :]


def _matches(data: SequenceData, fv, align: np.ndarray):
    """Per frame the Hungarian matches: int64 gt ids, tracker ids and float64 similarities."""
    single = (fv.n_gt[fv.both] == 1) & (fv.n_tracker[fv.both] == 1)
    t1 = fv.both[single]
    mg, mt, ms = [data.gt_id[fv.gt_start[t1]]], [data.tracker_id[fv.tracker_start[t1]]], [
        data.similarity[fv.pair_start[t1]]]  # fmt: skip
    for t in fv.both[~single].tolist():
        gt_ids, tr_ids, sim = fv.frame(data, t)
        score = align[gt_ids[:, np.newaxis], tr_ids[np.newaxis, :]] * sim
        rows, cols = linear_sum_assignment(-score)
        mg.append(gt_ids[rows])
        mt.append(tr_ids[cols])
        ms.append(sim[rows, cols])
    return np.concatenate(mg), np.concatenate(mt), np.concatenate(ms)


def eval_sequence(data: SequenceData) -> dict:
    """TrackEval's ``HOTA.eval_sequence``: every field (arrays float64[T] over the alphas)."""
    if data.num_tracker_dets == 0 or data.num_gt_dets == 0:
        return _empty(data)
    fv = data.frames()
    align, gt_count, tr_count = _alignment(data, fv)
    mg, mt, ms = _matches(data, fv, align)
    res = {f: np.zeros(ALPHAS.shape[0]) for f in FLOAT_ARRAY_FIELDS + INTEGER_ARRAY_FIELDS}
    shape = (data.num_gt_ids, data.num_tracker_ids)
    for a, alpha in enumerate(ALPHAS):
        ok = ms >= alpha - EPS
        tp = int(ok.sum())
        res["HOTA_TP"][a] = tp
        res["HOTA_FN"][a] = data.num_gt_dets - tp
        res["HOTA_FP"][a] = data.num_tracker_dets - tp
        if tp:
            res["LocA"][a] = ms[ok].sum()
        counts = np.zeros(shape)
        np.add.at(counts, (mg[ok], mt[ok]), 1)
        ass_a = counts / np.maximum(1, gt_count + tr_count - counts)
        res["AssA"][a] = np.sum(counts * ass_a) / np.maximum(1, tp)
        res["AssRe"][a] = np.sum(counts * (counts / np.maximum(1, gt_count))) / np.maximum(1, tp)
        res["AssPr"][a] = np.sum(counts * (counts / np.maximum(1, tr_count))) / np.maximum(1, tp)
    res["LocA"] = np.maximum(1e-10, res["LocA"]) / np.maximum(1e-10, res["HOTA_TP"])
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
