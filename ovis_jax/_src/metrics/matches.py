"""Per-result matching records: which ground truth each result is matched to (``--matches``).

The matching is the official greedy one (metric step 9) at area range "all", occlusion range "all"
and every IoU threshold, over the kept results (the first max(max_dets) of each (video,
category) by score). Computing (:func:`match_records`, from the IoUs a backend already has) is
kept apart from writing (:func:`matches_lines`, :func:`write_matches`).

What each result gets:

- ``gt``: the ground-truth track it is matched to at IoU 0.5 (the threshold equal to 0.5, or
  the first threshold when 0.5 is not one of them), or none;
- ``iou``: its track IoU with that ground truth; when unmatched, its best IoU with a ground
  truth of its video and category (crowds included), or none when there is no such ground
  truth;
- ``matched``: matched or not at each threshold.

Results that are never evaluated get no ground truth and all-False ``matched``: results beyond
the first max(max_dets) of their (video, category) (their ``iou`` is still their best IoU, as
defined above) and results whose category is not in the ground truth (``iou`` none: no ground
truth of that category exists).
"""

from __future__ import annotations

import json
import os
from typing import NamedTuple

import numpy as np

from ovis_jax._src.backends.grouping import Groups, group_tracks, gt_ignore_flags
from ovis_jax._src.params import EvalParams
from ovis_jax._src.tempfiles import temp_beside

__all__ = ["Matches", "assemble_matches", "match_records", "matches_lines", "write_matches"]


class Matches(NamedTuple):
    """One record per result of the results file, in file order. N results, T thresholds.

    Attributes:
        result: int64[N] 0-based index of the result in the results file.
        video_id, category_id: int64[N].
        score: float64[N].
        gt_id: int64[N] annotation id of the matched ground truth at IoU 0.5 (see
            ``has_gt``; 0 where there is none).
        has_gt: bool[N] whether the result is matched at IoU 0.5.
        iou: float64[N] IoU with the matched ground truth, else the best IoU with a ground
            truth of the same video and category; NaN where there is none.
        matched: bool[N, T] matched at each IoU threshold.
    """

    result: np.ndarray
    video_id: np.ndarray
    category_id: np.ndarray
    score: np.ndarray
    gt_id: np.ndarray
    has_gt: np.ndarray
    iou: np.ndarray
    matched: np.ndarray


def threshold_index(params: EvalParams) -> int:
    """Index of the threshold the ``gt_id`` / ``iou`` fields refer to: 0.5, else the first."""
    hits = np.flatnonzero(params.iou_array == 0.5)
    return int(hits[0]) if hits.size else 0


def _best_ious(groups: Groups, ious: np.ndarray) -> np.ndarray:
    """float64[D] each kept result's largest IoU in its group, NaN where the group has no
    ground truth."""
    n_d = groups.d_track.shape[0]
    nd, ng = np.diff(groups.d_start), np.diff(groups.g_start)
    d_of_pair = np.repeat(np.arange(n_d), np.repeat(ng, nd))
    best = np.full(n_d, -np.inf)
    np.maximum.at(best, d_of_pair, ious)
    best[np.repeat(ng, nd) == 0] = np.nan
    return best


def _overflow_ious(gt, results, overflow: np.ndarray) -> np.ndarray:
    """float64[len(overflow)] best IoU of results never kept (beyond the max-detection cut)."""
    from ovis_jax._src.similarity.cpu import pair_ious

    if overflow.size == 0:
        return np.zeros(0)
    groups = group_tracks(
        gt,
        results.video_id[overflow],
        results.category_id[overflow],
        results.score[overflow],
        max_det=overflow.size,
    )
    best = np.full(overflow.size, np.nan)
    best[groups.d_track] = _best_ious(
        groups, pair_ious(results.masks.take(overflow), gt.masks, groups)
    )
    return best


def match_records(gt, results, groups: Groups, ious: np.ndarray, *, params: EvalParams) -> Matches:
    """The :class:`Matches` of every result, from a backend's groups and pair IoUs.

    Args:
        gt: the :class:`~ovis_jax.GroundTruth`.
        results: the :class:`~ovis_jax.Results`.
        groups: the (video, category) groups the IoUs were computed for.
        ious: float64[pairs] the pair IoUs, per group result-major.
        params: the evaluation parameters (thresholds; area and occlusion range 0 is "all").
    """
    from ovis_jax._src.backends.cpu import (
        kernels as cpu_kernels,  # numba: imported when matches are asked for
    )

    g_track = groups.g_track
    g_ignore = gt_ignore_flags(gt, params)[g_track, 0, 0]
    n_d, n_t = groups.d_track.shape[0], len(params.iou_thresholds)
    flags = np.zeros((n_d, n_t, 1, 1), dtype=bool), np.zeros((n_d, n_t, 1, 1), dtype=bool)
    found = np.full((n_d, n_t, 1, 1), -1, dtype=np.int64)
    cpu_kernels.match_groups(
        np.ascontiguousarray(ious, dtype=np.float64), groups.pair_start, groups.d_start,
        groups.g_start, np.ascontiguousarray(g_ignore).reshape(-1, 1, 1), gt.iscrowd[g_track],
        np.zeros((n_d, 1), dtype=bool), params.iou_array, 0, groups.num_groups, *flags, found,
    )  # fmt: skip
    out = found[:, :, 0, 0]
    t = threshold_index(params)
    best = _best_ious(groups, ious)
    pos = out[:, t]
    iou = best.copy()
    has = pos >= 0
    if has.any():
        # The pair of (kept result i, ground-truth position p): its group's first pair, plus
        # the result's row times the group's size, plus the column.
        grp = groups.d_group[has]
        row = np.flatnonzero(has) - groups.d_start[grp]
        col = pos[has] - groups.g_start[grp]
        ng = groups.g_start[grp + 1] - groups.g_start[grp]
        iou[has] = ious[groups.pair_start[grp] + row * ng + col]
    gt_track = np.full(pos.shape[0], -1, dtype=np.int64)
    gt_track[has] = g_track[pos[has]]
    kept = groups.d_track
    overflow = np.setdiff1d(np.arange(results.score.shape[0]), kept)
    n_t = out.shape[1]
    return assemble_matches(
        gt,
        results,
        index=np.concatenate([kept, overflow]),
        gt_track=np.concatenate([gt_track, np.full(overflow.size, -1)]),
        iou=np.concatenate([iou, _overflow_ious(gt, results, overflow)]),
        matched=np.concatenate([out >= 0, np.zeros((overflow.size, n_t), dtype=bool)]),
    )


def assemble_matches(gt, results, *, index, gt_track, iou, matched) -> Matches:
    """The :class:`Matches` in file order from per-result pieces, plus the results whose
    category is not in the ground truth (never evaluated).

    Args:
        gt: the ground truth.
        results: the results.
        index: int64[D] every result of ``results`` once (positions in ``results``).
        gt_track: int64[D] the matched ground-truth track (position in ``gt``), -1 for none.
        iou: float64[D], NaN for none.
        matched: bool[D, T].
    """
    index = np.asarray(index, dtype=np.int64)
    gt_track = np.asarray(gt_track, dtype=np.int64)
    n_t = matched.shape[1]
    unknown = results.unknown
    n_u = 0 if unknown is None else unknown.result_id.shape[0]
    has = gt_track >= 0
    gt_ids = np.zeros(gt_track.shape[0], dtype=np.int64)
    gt_ids[has] = gt.ann_id[gt_track[has]]

    def cat(known, other):
        return np.concatenate([known, other]) if n_u else np.asarray(known)

    u = unknown
    file_index = cat(results.result_id[index] - 1, u.result_id - 1 if n_u else None)
    order = np.argsort(file_index, kind="stable")
    return Matches(
        result=file_index[order],
        video_id=cat(results.video_id[index], u.video_id if n_u else None)[order],
        category_id=cat(results.category_id[index], u.category_id if n_u else None)[order],
        score=cat(results.score[index], u.score if n_u else None)[order],
        gt_id=cat(gt_ids, np.zeros(n_u, np.int64))[order],
        has_gt=cat(has, np.zeros(n_u, bool))[order],
        iou=cat(np.asarray(iou, dtype=np.float64), np.full(n_u, np.nan))[order],
        matched=cat(matched, np.zeros((n_u, n_t), bool))[order],
    )


def matches_lines(matches: Matches):
    """Yields one JSON line (no newline) per result, in results-file order."""
    for i in range(matches.result.shape[0]):
        iou = float(matches.iou[i])
        record = {
            "result": int(matches.result[i]),
            "video_id": int(matches.video_id[i]),
            "category_id": int(matches.category_id[i]),
            "score": float(matches.score[i]),
            "gt_id": int(matches.gt_id[i]) if matches.has_gt[i] else None,
            "iou": None if np.isnan(iou) else iou,
            "matched": [bool(x) for x in matches.matched[i]],
        }
        yield json.dumps(record, allow_nan=False)


def write_matches(matches: Matches, path: str | os.PathLike) -> None:
    """Writes the matches as JSON Lines (one object per result, results-file order), through
    a temporary file of this call's own (unique, in the same folder) and a rename, so that an
    interrupted run leaves no truncated file and concurrent calls never mix their lines."""
    path = os.fspath(path)
    fd, tmp = temp_beside(path)
    try:
        with open(fd, "w", encoding="utf-8") as f:
            for line in matches_lines(matches):
                f.write(line + "\n")
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
