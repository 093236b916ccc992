"""Similarities from the compiled CPU kernels: track IoUs (metric step 6) and per-frame IoUs.

Intersections are exact integers (run boundaries merged by
:func:`~ovis_jax._src.backends.cpu.kernels.group_intersections`); an IoU is
``I / (area_d + area_g - I)`` in float64, 0 where the union is empty. The per-frame IoUs are
the same kernel on a view of the masks where every frame is a track of its own, so frame-level
metrics (error analysis, tracking metrics) share the path of the AP.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from ovis_jax._src.backends.cpu import kernels as K
from ovis_jax._src.backends.cpu import precompile
from ovis_jax._src.backends.grouping import Groups
from ovis_jax._src.masks.rle import MaskTable
from ovis_jax._src.parallel import run_chunks

__all__ = ["frame_ious", "frame_table", "pair_ious", "sequence_frame_ious"]


def _side(masks: MaskTable) -> tuple[np.ndarray, ...]:
    """The arrays a kernel reads for one side, plus its per-frame scratch offsets."""
    return (
        masks.chars,
        masks.char_start,
        masks.frame_string,
        masks.frame_start,
        masks.string_values,
        masks.string_area,
        masks.string_first,
        masks.string_last,
        np.zeros(masks.frame_string.shape[0], dtype=np.int64),
    )


def pair_ious(d_masks: MaskTable, g_masks: MaskTable, groups: Groups) -> np.ndarray:
    """float64[pairs] track IoUs of every pair of every group (metric step 6), result-major.

    Intersections are exact integers; ``IoU = I / (area_d + area_g - I)`` in float64, 0 where
    the union is empty.
    """
    n_pairs = int(groups.pair_start[-1])
    inter = np.zeros(n_pairs, dtype=np.int64)
    d, g = _side(d_masks), _side(g_masks)
    precompile.wait_for("group_intersections")  # a first run's helper process may have it
    # Cost of a group: the run lengths it decodes plus those it merges (pairs x frames).
    run_chunks(
        lambda g0, g1: K.group_intersections(
            d, g, groups.d_track, groups.d_start, groups.g_track, groups.g_start,
            groups.pair_start, g0, g1, inter,
        ),
        groups.num_groups,
        cost=np.diff(groups.pair_start) + 1,
        min_cost=256,
    )  # fmt: skip
    pair_d, pair_g = groups.pairs()
    union = d_masks.track_areas()[pair_d] + g_masks.track_areas()[pair_g] - inter
    safe = np.where(union > 0, union, 1).astype(np.float64)
    return np.where(union > 0, inter.astype(np.float64) / safe, 0.0)


def frame_table(masks: MaskTable) -> MaskTable:
    """The same masks with every frame as its own track (track areas = frame areas)."""
    n = masks.frame_string.shape[0]
    per = np.diff(masks.frame_start)
    return dataclasses.replace(
        masks,
        frame_start=np.arange(n + 1, dtype=np.int64),
        height=np.repeat(masks.height, per),
        width=np.repeat(masks.width, per),
    )


def frame_ious(results, gt, d: np.ndarray, g: np.ndarray):
    """Per pair (result track d, gt track g): float64[F] per-frame IoUs and bool[F] frames
    where either mask is non-empty, concatenated, with int64[pairs + 1] offsets."""
    dm, gm = results.masks, gt.masks
    n = dm.frame_start[d + 1] - dm.frame_start[d]
    start = np.zeros(n.shape[0] + 1, dtype=np.int64)
    np.cumsum(n, out=start[1:])
    local = np.arange(start[-1], dtype=np.int64) - np.repeat(start[:-1], n)
    d_frames = np.repeat(dm.frame_start[d], n) + local
    g_frames = np.repeat(gm.frame_start[g], n) + local
    one = np.arange(start[-1] + 1, dtype=np.int64)
    groups = Groups(
        key=one[:-1], d_track=d_frames, d_rank=np.zeros_like(d_frames), d_start=one,
        g_track=g_frames, g_start=one, pair_start=one,
    )  # fmt: skip
    ious = pair_ious(frame_table(dm), frame_table(gm), groups)
    either = (dm.area[d_frames] > 0) | (gm.area[g_frames] > 0)
    return ious, either, start


def sequence_frame_ious(
    results, gt, d_tracks: np.ndarray, d_start: np.ndarray, g_tracks: np.ndarray,
    g_start: np.ndarray, lengths: np.ndarray,
):  # fmt: skip
    """Per-frame IoUs of (video, category) sequences in TrackEval's layout, compiled.

    Only frames where both tracks of a pair have a mask are computed, each track's strings are
    decoded once, and intersections are merged only where foreground spans overlap.

    Args:
        results, gt: the loaded results and ground truth.
        d_tracks, g_tracks: int64 each sequence's result / gt tracks (file order), sequence
            after sequence.
        d_start, g_start: int64[Q + 1] each sequence's slice of them.
        lengths: int64[Q] frames of each sequence's video.

    Returns:
        ``(sim, frame, row, col, pair_start)``: float64[J] IoUs and int64[J] frame, gt row and
        tracker column within the frame (per frame tracker-major), int64[Q + 1] each
        sequence's slice.
    """
    from ovis_jax._src.metrics.tracking import kernels as TK

    dm, gm = results.masks, gt.masks
    n_q = lengths.shape[0]
    counts = np.zeros(n_q, dtype=np.int64)
    TK.count_pairs(dm.frame_string, dm.frame_start, d_tracks, d_start, gm.frame_string,
                   gm.frame_start, g_tracks, g_start, lengths, counts)  # fmt: skip
    pair_start = np.zeros(n_q + 1, dtype=np.int64)
    np.cumsum(counts, out=pair_start[1:])
    n = int(pair_start[-1])
    sim = np.zeros(n)
    frame, row, col = (np.zeros(n, dtype=np.int64) for _ in range(3))
    d, g = _side(dm), _side(gm)
    run_chunks(
        lambda s0, s1: TK.sequence_ious(d, g, d_tracks, d_start, g_tracks, g_start, lengths,
                                        pair_start, s0, s1, sim, frame, row, col),
        n_q, cost=counts + 1, min_cost=4096,
    )  # fmt: skip
    return sim, frame, row, col, pair_start
