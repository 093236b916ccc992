"""The official per-pair outputs of ``evaluate()`` (``ious``, ``evalImgs``), built on demand.

The summary arrays never need them (the fast path computes those); they exist for code that
reads the official evaluator's intermediate state. They come from the reference backend's
per-(video, category) steps (track IoUs, greedy matching), run on the same transformed inputs
as the fast path, and are laid out as the official code lays them out.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["eval_records", "pair_ious"]


def _pairs(ev: Any) -> dict:
    """``{(video id, category id): (_Pair, _PairEval) or None}`` over the evaluated params."""
    if "pairs" in ev._lazy:
        return ev._lazy["pairs"]
    from ovis_jax._src.backends.reference import match_pair, pair_with_ious
    from ovis_jax._src.compat.params import eval_params

    inputs, pe = ev._inputs, ev._paramsEval
    gt, res = inputs.gt, inputs.results
    params = eval_params(pe, pe.recThrs, ovis=ev._ovis)
    gts: dict[tuple[int, int], list[int]] = {}
    for g in range(gt.ann_id.shape[0]):
        gts.setdefault((int(gt.video_id[g]), int(gt.category_id[g])), []).append(g)
    dts: dict[tuple[int, int], list[int]] = {}
    for d in range(res.result_id.shape[0]):
        dts.setdefault((int(res.video_id[d]), int(res.category_id[d])), []).append(d)
    out = {}
    for v in pe.vidIds:
        for c in inputs.eval_cats:
            g_idx, d_idx = gts.get((int(v), int(c)), []), dts.get((int(v), int(c)), [])
            if not g_idx and not d_idx:
                out[(v, c)] = None
                continue
            pair = pair_with_ious(gt, res, g_idx, d_idx, params)
            out[(v, c)] = (pair, match_pair(gt, res, pair, params))
    ev._lazy["pairs"] = out
    return out


def pair_ious(ev: Any) -> dict:
    """The official ``ious``: ``{(video id, category id): float64[D, G]}`` or ``[]``."""
    return {key: ([] if val is None else val[0].ious) for key, val in _pairs(ev).items()}


def _record(ev: Any, key: tuple, a: int, o: int) -> dict | None:
    """One official ``evaluateVid`` record (area range ``a``, occlusion range ``o``)."""
    val = _pairs(ev)[key]
    if val is None:
        return None
    pair, ev_pair = val
    gt, res, pe = ev._inputs.gt, ev._inputs.results, ev._paramsEval
    g_ids = gt.ann_id[pair.g_idx].astype(np.int64)
    d_ids = res.result_id[pair.d_idx].astype(np.int64)
    gt_ig = ev_pair.gt_ignored[a, o].astype(int)
    order = np.argsort(gt_ig, kind="mergesort")  # ignored ground truths last
    rank = np.empty_like(order)
    rank[order] = np.arange(order.shape[0])
    dt_gt = ev_pair.dt_gt[a, o]  # [T, D] position in g_idx, -1 unmatched
    n_t = dt_gt.shape[0]
    dt_matches = np.where(dt_gt >= 0, g_ids[np.maximum(dt_gt, 0)] if g_ids.size else 0, 0)
    gt_matches = np.zeros((n_t, len(pair.g_idx)))
    for t, i in zip(*np.nonzero(dt_gt >= 0), strict=True):
        gt_matches[t, rank[dt_gt[t, i]]] = d_ids[i]
    record = {
        "video_id": key[0],
        "category_id": key[1],
        "aRng": pe.areaRng[a],
        "maxDet": pe.maxDets[-1],
        "dtIds": d_ids.tolist(),
        "gtIds": g_ids[order].tolist(),
        "dtMatches": dt_matches.astype(np.float64),
        "gtMatches": gt_matches,
        "dtScores": ev_pair.scores.tolist(),
        "gtIgnore": gt_ig[order],
        "dtIgnore": ev_pair.dt_ignored[a, o].copy(),
    }
    return record


def eval_records(ev: Any, ious: dict) -> list:
    """The official ``evalImgs``: records ordered category, area range, (occlusion range),
    video, as the official lays them out."""
    pe = ev._paramsEval
    n_o = len(pe.occRng) if ev._ovis else 1
    return [
        _record(ev, (v, c), a, o)
        for c in ev._inputs.eval_cats
        for a in range(len(pe.areaRng))
        for o in range(n_o)
        for v in pe.vidIds
    ]
