"""The tracking metrics' per-sequence inputs from a :class:`GroundTruth` and :class:`Results`.

As TrackEval's YouTube-VIS dataset (``trackeval/datasets/youtube_vis.py``) prepares them:

* a sequence is a (video, category) pair; a track is a detection in every frame where its
  segmentation is not null (an empty mask counts, with IoU 0 against everything);
* every result is a tracker track (no score threshold; ``score_threshold`` is ours), crowd
  ground truths are ordinary ground truths (``iscrowd`` only matters to TrackMAP);
* within a frame, detections are in file order; ids are relabelled per sequence to
  ``0..n - 1`` among the tracks present in some frame: ground truths by ascending annotation id,
  results in file order (TrackEval numbers them with a global counter in file order);
* the similarity of a (gt, tracker) pair in a frame is their mask IoU (0 when the union is
  empty), computed by our mask path (``backend="cpu"``) or by pycocotools (``"reference"``).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ovis_jax._src.backends.base import get_backend
from ovis_jax._src.io.model import GroundTruth, Results
from ovis_jax._src.metrics.tracking.base import SequenceData

__all__ = ["Sequences", "build_sequences", "frame_ious", "kept_results"]


def frame_ious(gt: GroundTruth, results: Results, d: np.ndarray, g: np.ndarray, *, backend):
    """Per pair (result track d, gt track g, same video): the per-frame IoUs, from the
    backend's per-frame IoUs (``Backend.frame_ious``, the compiled mask path on ``cpu`` and
    ``jax``, pycocotools on ``reference``).

    Args:
        backend: a backend object or a registered backend name.

    Returns:
        ``(ious, start)``: float64[J] every frame of every pair, pair after pair, and
        int64[P + 1] each pair's slice.
    """
    if isinstance(backend, str):
        backend = get_backend(backend)
    if d.shape[0] == 0:
        return np.zeros(0), np.zeros(1, dtype=np.int64)
    ious, _, start = backend.frame_ious(gt, results, d, g)
    return ious, start


def kept_results(results: Results, score_threshold: float | None) -> np.ndarray:
    """int64[D] the result tracks evaluated, in file order (score >= threshold if given)."""
    if score_threshold is None:
        return np.arange(results.score.shape[0], dtype=np.int64)
    return np.flatnonzero(results.score >= score_threshold).astype(np.int64)


class Sequences(NamedTuple):
    """The non-empty sequences, by category (K categories of the ground truth).

    Attributes:
        by_category: per category index, its sequences (videos with a gt or a tracker
            detection of that category), in ascending video id.
        gt_dets: int64[K] ground-truth detections (non-null frames) of each category.
    """

    by_category: tuple[tuple[SequenceData, ...], ...]
    gt_dets: np.ndarray


def _group_members(key: np.ndarray):
    order = np.argsort(key, kind="stable")
    uniq, first = np.unique(key[order], return_index=True)
    bounds = np.append(first, order.shape[0])
    return {int(k): order[bounds[i] : bounds[i + 1]] for i, k in enumerate(uniq.tolist())}


def _present(masks, tracks: np.ndarray, length: int) -> np.ndarray:
    """bool[X, F] non-null frames of ``tracks`` (all of one video of ``length`` frames)."""
    idx = masks.frame_start[tracks][:, None] + np.arange(length)[None, :]
    return masks.frame_string[idx] >= 0


def _dets(present: np.ndarray, ranks: np.ndarray):
    """Detections frame after frame (file order within a frame) and the relabelled ids."""
    used = present.any(axis=1)
    uniq = np.unique(ranks[used])
    ids = np.searchsorted(uniq, ranks)
    t, i = np.nonzero(present.T)
    return t.astype(np.int64), ids[i].astype(np.int64), int(uniq.shape[0])


def _sequence(length, gp, dp, gt_rank, iou) -> SequenceData:
    """One sequence from presence bool[Gk, F], bool[Dk, F], gt ranks and float64[Dk, Gk, F]."""
    g_frame, g_id, n_g = _dets(gp, gt_rank)
    d_frame, d_id, n_d = _dets(dp, np.arange(dp.shape[0]))
    both = (dp[:, None, :] & gp[None, :, :]).transpose(2, 0, 1)  # [F, Dk, Gk]
    t, di, gi = np.nonzero(both)
    # Row / column index within the frame: rank among the frame's present tracks.
    g_pos = np.cumsum(gp, axis=0) - 1
    d_pos = np.cumsum(dp, axis=0) - 1
    return SequenceData(
        num_timesteps=length, num_gt_ids=n_g, num_tracker_ids=n_d,
        gt_frame=g_frame, gt_id=g_id, tracker_frame=d_frame, tracker_id=d_id,
        pair_frame=t.astype(np.int64), pair_gt=g_pos[gi, t].astype(np.int64),
        pair_tracker=d_pos[di, t].astype(np.int64),
        similarity=iou.transpose(2, 0, 1)[both].astype(np.float64),
    )  # fmt: skip


def _keys(gt: GroundTruth, results: Results, kept: np.ndarray):
    """Per side the members of each (video position * K + category position) key."""
    n_k = gt.category_ids.shape[0]
    vpos = {v.id: i for i, v in enumerate(gt.videos)}
    to_pos = np.vectorize(vpos.__getitem__, otypes=[np.int64])
    g_key = (to_pos(gt.video_id) * n_k + np.searchsorted(gt.category_ids, gt.category_id)
             if gt.video_id.shape[0] else np.zeros(0, np.int64))  # fmt: skip
    d_vid, d_cat = results.video_id[kept], results.category_id[kept]
    d_key = (to_pos(d_vid) * n_k + np.searchsorted(gt.category_ids, d_cat)
             if kept.shape[0] else np.zeros(0, np.int64))  # fmt: skip
    return _group_members(g_key), _group_members(d_key)


def build_sequences(
    gt: GroundTruth, results: Results, *, backend: str = "cpu", kept: np.ndarray | None = None
) -> Sequences:
    """Every non-empty (video, category) sequence of ``gt`` and the ``kept`` results.

    On ``cpu`` and ``jax`` the per-frame IoUs come from one compiled pass in TrackEval's layout
    (:func:`~ovis_jax._src.similarity.cpu.sequence_frame_ious`); on ``reference`` from the
    backend's ``frame_ious`` (pycocotools) over every frame of every pair.
    """
    kept = np.arange(results.score.shape[0]) if kept is None else kept
    if isinstance(backend, str):
        backend = get_backend(backend)
    n_k = gt.category_ids.shape[0]
    g_groups, d_groups = _keys(gt, results, kept)
    keys = sorted(set(g_groups) | set(d_groups))
    empty = np.zeros(0, dtype=np.int64)
    members = [(kept[d_groups.get(k, empty)], g_groups.get(k, empty)) for k in keys]
    lengths = np.array([gt.videos[k // n_k].length for k in keys], dtype=np.int64)
    build = _reference_sequences if backend.name == "reference" else _compiled_sequences
    seqs = build(gt, results, members, lengths, backend)
    by_cat: list[list[SequenceData]] = [[] for _ in range(n_k)]
    for k, seq in zip(keys, seqs, strict=True):
        by_cat[k % n_k].append(seq)
    gt_dets = np.array([sum(s.num_gt_dets for s in seqs) for seqs in by_cat], dtype=np.int64)
    return Sequences(tuple(tuple(s) for s in by_cat), gt_dets)


def _offsets(parts) -> tuple[np.ndarray, np.ndarray]:
    """Concatenated int64 arrays and int64[Q + 1] their offsets."""
    start = np.zeros(len(parts) + 1, dtype=np.int64)
    np.cumsum([p.shape[0] for p in parts], out=start[1:])
    flat = np.concatenate(parts).astype(np.int64) if parts else np.zeros(0, np.int64)
    return flat, start


def _compiled_sequences(gt, results, members, lengths, backend) -> list[SequenceData]:
    """The sequences with IoUs from the compiled per-sequence kernel (one call for all)."""
    from ovis_jax._src.similarity.cpu import sequence_frame_ious

    d_tracks, d_start = _offsets([m[0] for m in members])
    g_tracks, g_start = _offsets([m[1] for m in members])
    sim, frame, row, col, p_start = sequence_frame_ious(
        results, gt, d_tracks, d_start, g_tracks, g_start, lengths
    )
    out = []
    for q, (ds, gs) in enumerate(members):
        length = int(lengths[q])
        gp, dp = _present(gt.masks, gs, length), _present(results.masks, ds, length)
        g_frame, g_id, n_g = _dets(gp, gt.ann_id[gs])
        d_frame, d_id, n_d = _dets(dp, np.arange(dp.shape[0]))
        p0, p1 = p_start[q], p_start[q + 1]
        out.append(SequenceData(
            num_timesteps=length, num_gt_ids=n_g, num_tracker_ids=n_d,
            gt_frame=g_frame, gt_id=g_id, tracker_frame=d_frame, tracker_id=d_id,
            pair_frame=frame[p0:p1], pair_gt=row[p0:p1], pair_tracker=col[p0:p1],
            similarity=sim[p0:p1],
        ))  # fmt: skip
    return out


def _reference_sequences(gt, results, members, lengths, backend) -> list[SequenceData]:
    """The sequences with IoUs from ``backend.frame_ious`` over every frame of every pair."""
    pair_d = [np.repeat(ds, gs.shape[0]) for ds, gs in members]
    pair_g = [np.tile(gs, ds.shape[0]) for ds, gs in members]
    empty = np.zeros(0, dtype=np.int64)
    pd_all = np.concatenate(pair_d) if pair_d else empty
    pg_all = np.concatenate(pair_g) if pair_g else empty
    ious, start = frame_ious(gt, results, pd_all, pg_all, backend=backend)
    out, p0 = [], 0
    for (ds, gs), length in zip(members, lengths.tolist(), strict=True):
        n_pairs = ds.shape[0] * gs.shape[0]
        iou = ious[start[p0] : start[p0 + n_pairs]].reshape(ds.shape[0], gs.shape[0], length)
        p0 += n_pairs
        gp, dp = _present(gt.masks, gs, length), _present(results.masks, ds, length)
        out.append(_sequence(length, gp, dp, gt.ann_id[gs], iou))
    return out
