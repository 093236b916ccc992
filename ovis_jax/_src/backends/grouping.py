"""Host bookkeeping shared by the compiled backends (NumPy only, no JAX): which results and
ground truths form each (video, category) group, score ranks, ignore flags (metric steps 5, 8).

Groups are the (video, category) pairs that have a result or a ground truth, ordered by video
position (ascending id) then category index; D kept results, G ground-truth tracks.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from ovis_jax._src.params import EvalParams

__all__ = [
    "Groups",
    "bucket",
    "group_tracks",
    "gt_ignore_flags",
    "length_views",
    "not_ignored_counts",
    "ragged_arange",
    "range_flags",
]


def bucket(n: int, minimum: int) -> int:
    """The smallest power of four >= max(n, minimum): few distinct shapes, few compilations."""
    size = minimum
    while size < n:
        size *= 4
    return size


def ragged_arange(lengths: np.ndarray) -> np.ndarray:
    """Concatenation of ``arange(l)`` for each l."""
    total = int(lengths.sum())
    starts = np.repeat(np.cumsum(lengths) - lengths, lengths)
    return np.arange(total, dtype=np.int64) - starts


def range_flags(values: np.ndarray, bounds: np.ndarray) -> np.ndarray:
    """bool[E, A]: whether each of ``values`` (float[E]) lies outside each inclusive ``[lo, hi]``
    range of ``bounds`` (float[A, 2]: area ranges, or occlusion ranges as A = O)."""
    return (values[:, None] < bounds[None, :, 0]) | (values[:, None] > bounds[None, :, 1])


@dataclasses.dataclass(frozen=True)
class Groups:
    """Results and ground truths by (video, category) group.

    Attributes:
        key: int64[Q] ``video position * K + category index``, ascending.
        d_track: int64[D] kept results (the first max(max_dets) by score of each group),
            group after group, in score order (stable in file order).
        d_rank: int64[D] score rank of each kept result within its group.
        d_start: int64[Q + 1] each group's slice of ``d_track``.
        g_track: int64[G] ground-truth tracks, group after group, in file order.
        g_start: int64[Q + 1] each group's slice of ``g_track``.
        pair_start: int64[Q + 1] each group's first (result, ground truth) pair; a
            group's pairs are result-major.
    """

    key: np.ndarray
    d_track: np.ndarray
    d_rank: np.ndarray
    d_start: np.ndarray
    g_track: np.ndarray
    g_start: np.ndarray
    pair_start: np.ndarray

    @property
    def num_groups(self) -> int:
        return int(self.key.shape[0])

    @property
    def d_group(self) -> np.ndarray:
        """int64[D] group of each kept result."""
        return np.repeat(np.arange(self.num_groups), np.diff(self.d_start))

    def pairs(self) -> tuple[np.ndarray, np.ndarray]:
        """``(pair_d, pair_g)``: int64[pairs] the result and ground-truth track of each pair."""
        nd, ng = np.diff(self.d_start), np.diff(self.g_start)
        per_d = np.repeat(ng, nd)
        pair_d = np.repeat(self.d_track, per_d)
        g_first = np.repeat(self.g_start[:-1], nd)
        pair_g = self.g_track[np.repeat(g_first, per_d) + ragged_arange(per_d)]
        return pair_d, pair_g


def _starts(group: np.ndarray, n_groups: int) -> np.ndarray:
    start = np.zeros(n_groups + 1, dtype=np.int64)
    np.cumsum(np.bincount(group, minlength=n_groups), out=start[1:])
    return start


def group_tracks(
    gt, video_id: np.ndarray, category_id: np.ndarray, score: np.ndarray, *, max_det: int
) -> Groups:
    """Groups results and ground-truth tracks (metric step 5).

    Args:
        gt: the :class:`~ovis_jax.GroundTruth`.
        video_id, category_id: int64[D] of each result (categories of ``gt`` only).
        score: float64[D] of each result; file order breaks ties.
        max_det: results kept per group, the first by score.
    """
    video_ids = np.asarray([v.id for v in gt.videos], dtype=np.int64)
    n_k = gt.category_ids.shape[0]
    d_key = np.searchsorted(video_ids, video_id) * n_k + np.searchsorted(
        gt.category_ids, category_id
    )
    g_key = np.searchsorted(video_ids, gt.video_id) * n_k + np.searchsorted(
        gt.category_ids, gt.category_id
    )
    key, inverse = np.unique(np.concatenate([d_key, g_key]).astype(np.int64), return_inverse=True)
    d_group, g_group = inverse[: d_key.shape[0]], inverse[d_key.shape[0] :]
    order = np.lexsort((-np.asarray(score, np.float64), d_group))  # lexsort is stable
    counts = np.bincount(d_group, minlength=key.shape[0])
    rank = ragged_arange(counts)
    keep = rank < max_det
    d_track, d_rank = order[keep], rank[keep]
    g_track = np.argsort(g_group, kind="stable")
    d_start = _starts(d_group[d_track], key.shape[0])
    g_start = _starts(g_group, key.shape[0])
    pair_start = np.zeros(key.shape[0] + 1, dtype=np.int64)
    np.cumsum(np.diff(d_start) * np.diff(g_start), out=pair_start[1:])
    return Groups(key, d_track, d_rank, d_start, g_track, g_start, pair_start)


def gt_ignore_flags(gt, params: EvalParams) -> np.ndarray:
    """bool[G, A, O]: each ground-truth track ignored in each area × occlusion range (step 8)."""
    g_area_out = range_flags(gt.avg_area, params.area_bounds())
    g_occ_out = range_flags(gt.occ_score, params.occlusion_bounds(gt.has_occlusion))
    if not gt.has_occlusion:
        g_occ_out[:] = False
    return gt.iscrowd[:, None, None] | g_area_out[:, :, None] | g_occ_out[:, None, :]


def not_ignored_counts(gt, gt_ignore: np.ndarray) -> np.ndarray:
    """int64[K, A, O]: ``npig``, the not-ignored ground-truth tracks of each category and range
    (metric step 11), from ``gt_ignore`` bool[G, A, O]."""
    npig = np.zeros((gt.category_ids.shape[0], *gt_ignore.shape[1:]), dtype=np.int64)
    np.add.at(npig, np.searchsorted(gt.category_ids, gt.category_id), ~gt_ignore)
    return npig


def length_views(gt, results, params: EvalParams):
    """The inputs of the track-length pass (AP by track length): ``(gt, results, params)`` with
    each track's length (its number of non-null frames, as TIVE counts it) in place of its
    average area and the length ranges in place of the area ranges, so that the area-range
    machinery of every backend runs unchanged: a ground-truth track outside a length range is
    ignored there, an unmatched result outside it (by its own length) is ignored there.
    Only the "all" occlusion range is kept."""
    gt_l = dataclasses.replace(gt, avg_area=gt.masks.track_lengths().astype(np.float64))
    res_l = dataclasses.replace(results, avg_area=results.masks.track_lengths().astype(np.float64))
    return gt_l, res_l, params.for_lengths(gt.format)
