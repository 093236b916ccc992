"""Video subsets (YouTube-VIS 2022 short / long) and category groups (LV-VIS base / novel).

A *subset* is evaluated as the official YouTube-VIS 2022 script does: the evaluator runs on the
subset's videos and their annotations, with all categories, and the results of other videos
are left out. A *group* restricts only the summary: each number is the mean of the defined
precision / recall entries of the group's categories, from the arrays of the whole evaluation.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping

import numpy as np

from ovis_jax._src.io.model import GroundTruth, Results
from ovis_jax._src.io.vis import fingerprint as gt_fingerprint
from ovis_jax._src.metrics.ap.summary import EvalResult

__all__ = [
    "PARTITION_GROUPS",
    "group_stats",
    "groups_of",
    "restrict_ground_truth",
    "restrict_results",
    "subset_video_ids",
    "take_tracks",
]

#: LV-VIS category partitions: ``partition`` 0 and 1 are base categories, 2 and 3 novel.
PARTITION_GROUPS: dict[str, tuple[int, ...]] = {"base": (0, 1), "novel": (2, 3)}


def subset_video_ids(gt: GroundTruth, video_ids: Iterable[int], *, name: str) -> np.ndarray:
    """The subset's video ids, checked against the ground truth.

    Returns:
        int64[V] the ids, ascending, without repeats.

    Raises:
        ValueError: an id that is not a video of ``gt`` (the first few named), or no ids.
    """
    ids = np.unique(np.asarray(list(video_ids), dtype=np.int64))
    known = np.asarray([v.id for v in gt.videos], dtype=np.int64)
    unknown = ids[~np.isin(ids, known)]
    if unknown.size:
        shown = ", ".join(str(v) for v in unknown[:10].tolist())
        more = f" and {unknown.size - 10} more" if unknown.size > 10 else ""
        raise ValueError(
            f"subset {name!r}: video id(s) {shown}{more} are not videos of the ground truth"
        )
    if not ids.size:
        raise ValueError(f"subset {name!r} has no videos")
    return ids


def take_tracks(tracks: GroundTruth | Results, keep: np.ndarray, fields: tuple[str, ...], **more):
    """A copy holding only tracks ``keep`` (per-track arrays, masks), warnings left to the
    whole file's."""
    masks = tracks.masks.take(keep)
    taken = {name: getattr(tracks, name)[keep] for name in fields}
    return dataclasses.replace(tracks, masks=masks, rles=masks.rles(), warnings=(), **taken, **more)


def restrict_ground_truth(gt: GroundTruth, video_ids: np.ndarray) -> GroundTruth:
    """The ground truth of some videos (ids from :func:`subset_video_ids`): their videos and
    annotations in file order, every category."""
    keep = np.flatnonzero(np.isin(gt.video_id, video_ids))
    videos = tuple(v for v in gt.videos if v.id in set(video_ids.tolist()))
    fields = ("ann_id", "video_id", "category_id", "iscrowd", "avg_area", "occ_score")
    fingerprint = gt_fingerprint(videos, gt.category_ids, gt.ann_id[keep].tolist(), gt.format)
    return take_tracks(gt, keep, fields, videos=videos, fingerprint=fingerprint)


def restrict_results(results: Results, video_ids: np.ndarray) -> Results:
    """The results of some videos, in file order, keeping their ids (ties in score still
    resolve by position in the file)."""
    keep = np.flatnonzero(np.isin(results.video_id, video_ids))
    fields = ("result_id", "video_id", "category_id", "score", "avg_area")
    return take_tracks(results, keep, fields, num_unknown_category=0)


def groups_of(gt: GroundTruth, groups: Mapping[str, Iterable[int]] | None) -> dict[str, np.ndarray]:
    """The category groups to report: the given ones, then ``base`` / ``novel`` from the
    categories' ``partition`` when the ground truth has one (and no group of that name was
    given).

    Returns:
        ``{name: int64[K'] category ids}``, ids ascending.

    Raises:
        ValueError: a group with an id that is not a category of the ground truth, or empty.
    """
    out: dict[str, np.ndarray] = {}
    for name, ids in (groups or {}).items():
        cids = np.unique(np.asarray(list(ids), dtype=np.int64))
        unknown = cids[~np.isin(cids, gt.category_ids)]
        if unknown.size:
            shown = ", ".join(str(c) for c in unknown[:10].tolist())
            raise ValueError(
                f"group {name!r}: category id(s) {shown} are not categories of the ground truth"
            )
        if not cids.size:
            raise ValueError(f"group {name!r} has no categories")
        out[name] = cids
    partition = gt.category_partition
    if partition.size and (partition >= 0).any():
        for name, parts in PARTITION_GROUPS.items():
            cids = gt.category_ids[np.isin(partition, parts)]
            if name not in out and cids.size:
                out[name] = cids
    return out


def group_stats(result: EvalResult, category_ids: np.ndarray) -> dict[str, float]:
    """The summary numbers of some categories: every number's formula restricted to them.

    Args:
        result: an evaluation (precision [T, R, K, A, O, M], recall [T, K, A, O, M]).
        category_ids: int64[K'] the group's categories (all among ``result.category_ids``).

    Returns:
        ``{key: value}`` like ``result.stats`` (-1 where no entry of the group is defined).
    """
    k = np.flatnonzero(np.isin(result.category_ids, category_ids))
    return result.category_stats(k)
