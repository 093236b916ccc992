"""The per-sequence input of the tracking metrics and the helpers that combine results.

A *sequence* is one (video, category) pair, as TrackEval's YouTube-VIS dataset evaluates it:
per frame, the ground-truth ids and tracker ids present in that frame (contiguous ids
``0..num_*_ids - 1``) and their similarity matrix (per-frame mask IoU). It is stored flat:
the detections frame after frame, and the similarity matrices of the frames where both sides
have detections, each as a tracker-major block (the transpose of TrackEval's
``similarity_scores[t]``, which pycocotools returns in Fortran order).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import NamedTuple

import numpy as np

__all__ = ["EPS", "SequenceData", "combine_sum", "combine_weighted_av"]

#: ``np.finfo(float).eps``: the tolerance TrackEval adds to its threshold comparisons.
EPS = float(np.finfo("float").eps)


class SequenceData(NamedTuple):
    """One sequence (video, category). E detections of one side, P (gt, tracker) pair entries.

    Attributes:
        num_timesteps: frames of the video.
        num_gt_ids, num_tracker_ids: distinct ids (ids are ``0..n - 1``).
        gt_frame, gt_id: int64[E] the ground-truth detections, frame after frame (within a
            frame in TrackEval's row order).
        tracker_frame, tracker_id: int64[E] the tracker detections, the same way.
        pair_frame, pair_gt, pair_tracker: int64[P] per pair entry its frame and the *row*
            (gt) and *column* (tracker) index within that frame's detections; entries cover
            every (tracker, gt) of every frame where both sides are present, frame after
            frame, tracker-major within a frame.
        similarity: float64[P] the similarity of each pair entry.
    """

    num_timesteps: int
    num_gt_ids: int
    num_tracker_ids: int
    gt_frame: np.ndarray
    gt_id: np.ndarray
    tracker_frame: np.ndarray
    tracker_id: np.ndarray
    pair_frame: np.ndarray
    pair_gt: np.ndarray
    pair_tracker: np.ndarray
    similarity: np.ndarray

    @property
    def num_gt_dets(self) -> int:
        return int(self.gt_id.shape[0])

    @property
    def num_tracker_dets(self) -> int:
        return int(self.tracker_id.shape[0])

    @classmethod
    def from_frames(
        cls,
        *,
        gt_ids: Sequence[Sequence[int]],
        tracker_ids: Sequence[Sequence[int]],
        similarity_scores: Sequence[np.ndarray],
        num_gt_ids: int | None = None,
        num_tracker_ids: int | None = None,
    ) -> SequenceData:
        """From TrackEval's ``data`` dict lists (ids already contiguous, per-frame
        ``similarity_scores[t]`` of shape ``(len(gt_ids[t]), len(tracker_ids[t]))``)."""
        n = len(gt_ids)
        if len(tracker_ids) != n or len(similarity_scores) != n:
            raise ValueError("gt_ids, tracker_ids and similarity_scores need one entry a frame")
        g = [np.asarray(x, dtype=np.int64).reshape(-1) for x in gt_ids]
        d = [np.asarray(x, dtype=np.int64).reshape(-1) for x in tracker_ids]
        parts = []
        for t in range(n):
            s = np.asarray(similarity_scores[t], dtype=np.float64)
            if s.shape != (g[t].shape[0], d[t].shape[0]):
                raise ValueError(f"similarity_scores[{t}] has shape {s.shape}, expected "
                                 f"{(g[t].shape[0], d[t].shape[0])}")  # fmt: skip
            if s.size:
                di, gi = np.nonzero(np.ones((d[t].shape[0], g[t].shape[0]), dtype=bool))
                parts.append((np.full(di.shape[0], t), gi, di, s.T[di, gi]))
        cat = (lambda i, dt: np.concatenate([p[i] for p in parts]).astype(dt)) if parts else (
            lambda i, dt: np.zeros(0, dtype=dt))  # fmt: skip
        all_g, all_d = _cat(g), _cat(d)
        return cls(
            num_timesteps=n,
            num_gt_ids=int(all_g.max() + 1 if all_g.size else 0) if num_gt_ids is None
            else num_gt_ids,
            num_tracker_ids=int(all_d.max() + 1 if all_d.size else 0) if num_tracker_ids is None
            else num_tracker_ids,
            gt_frame=np.repeat(np.arange(n), [x.shape[0] for x in g]), gt_id=all_g,
            tracker_frame=np.repeat(np.arange(n), [x.shape[0] for x in d]), tracker_id=all_d,
            pair_frame=cat(0, np.int64), pair_gt=cat(1, np.int64), pair_tracker=cat(2, np.int64),
            similarity=cat(3, np.float64),
        )  # fmt: skip

    def frames(self) -> FrameView:
        """The per-frame view the metrics iterate over (see :class:`FrameView`)."""
        return FrameView.of(self)


def _cat(arrays: Sequence[np.ndarray]) -> np.ndarray:
    return np.concatenate(arrays) if arrays else np.zeros(0, dtype=np.int64)


class FrameView(NamedTuple):
    """Per-frame offsets into a :class:`SequenceData` (F = ``num_timesteps``).

    Attributes:
        gt_start, tracker_start, pair_start: int64[F + 1] each frame's slice of the gt
            detections, tracker detections and pair entries.
        n_gt, n_tracker: int64[F] detections per frame.
        both: int64 the frames where both sides have detections, ascending.
    """

    gt_start: np.ndarray
    tracker_start: np.ndarray
    pair_start: np.ndarray
    n_gt: np.ndarray
    n_tracker: np.ndarray
    both: np.ndarray

    @classmethod
    def of(cls, data: SequenceData) -> FrameView:
        f = data.num_timesteps
        n_gt = np.bincount(data.gt_frame, minlength=f).astype(np.int64)
        n_tr = np.bincount(data.tracker_frame, minlength=f).astype(np.int64)
        starts = []
        for n in (n_gt, n_tr, n_gt * n_tr):
            s = np.zeros(f + 1, dtype=np.int64)
            np.cumsum(n, out=s[1:])
            starts.append(s)
        return cls(*starts, n_gt, n_tr, np.flatnonzero((n_gt > 0) & (n_tr > 0)))

    def frame(self, data: SequenceData, t: int):
        """``(gt_ids, tracker_ids, similarity)`` of frame ``t`` as TrackEval holds them:
        int64 ids and a float64 (n_gt, n_tracker) matrix in Fortran order."""
        gt = data.gt_id[self.gt_start[t] : self.gt_start[t + 1]]
        tr = data.tracker_id[self.tracker_start[t] : self.tracker_start[t + 1]]
        block = data.similarity[self.pair_start[t] : self.pair_start[t + 1]]
        return gt, tr, block.reshape(tr.shape[0], gt.shape[0]).T


def combine_sum(all_res: Sequence[Mapping], field: str):
    """Sum of ``field`` over results (TrackEval's ``_combine_sum``; 0 when there are none)."""
    return sum(r[field] for r in all_res)


def combine_weighted_av(all_res: Sequence[Mapping], field: str, comb_res: Mapping, weight: str):
    """``field`` averaged with weights ``weight`` (TrackEval's ``_combine_weighted_av``)."""
    total = sum(r[field] * r[weight] for r in all_res)
    return total / np.maximum(1.0, comb_res[weight])


def class_mean(all_res: Sequence[Mapping], field: str):
    """Mean of ``field`` over the classes (``np.mean(..., axis=0)``; NaN when there are none)."""
    if not all_res:
        return np.nan
    return np.mean([r[field] for r in all_res], axis=0)
