"""The JAX backend: host bookkeeping (grouping, ranks, padding) around the device kernels.

Device work (jit, float64/int64 under a scoped ``jax.enable_x64``): intersections
(:mod:`~iou`), greedy matching (:mod:`~matching`) and accumulation
(:mod:`~accumulation`). Host work (NumPy, variable sizes): which results and ground
truths form each (video, category) group, score ranks, ignore flags, padding to bucket sizes.
The caller's global x64 setting is never changed.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from collections.abc import Callable
from typing import NamedTuple

import jax
import numpy as np

from ovis_jax._src.backends.base import get_backend
from ovis_jax._src.backends.grouping import (
    Groups,
    bucket,
    group_tracks,
    gt_ignore_flags,
    not_ignored_counts,
    ragged_arange,
    range_flags,
)
from ovis_jax._src.backends.jax.accumulation import accumulate
from ovis_jax._src.backends.jax.iou import track_ious
from ovis_jax._src.backends.jax.matching import match_groups
from ovis_jax._src.io.model import GroundTruth
from ovis_jax._src.masks.rle import MaskTable
from ovis_jax._src.metrics.ap.curves import CurveLayout
from ovis_jax._src.metrics.ap.summary import EvalResult
from ovis_jax._src.params import EvalParams

__all__ = ["JaxBackend", "MatchInput", "evaluate_tracks", "pair_frames"]

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class MatchInput:
    """What matching and accumulation need, host side.

    D kept results (at most max(max_dets) per group, score order), G ground truths.

    Attributes:
        num_groups: number of (video, category) groups with a result or a ground truth.
        dt_group, dt_rank: int64[D] group and score rank of each kept result.
        dt_score: float64[D].
        dt_area_out: bool[D, A] result average area outside each area range.
        gt_group, gt_rank: int64[G] group and file-order position of each ground truth.
        gt_crowd: bool[G].
        gt_ignore: bool[G, A, O].
        group_video, group_category: int64[Q] video position and category index.
        ious: float64[pairs] IoU of each (result, ground truth) pair of a group, pairs ordered
            by result then ground truth.
    """

    num_groups: int
    dt_group: np.ndarray
    dt_rank: np.ndarray
    dt_score: np.ndarray
    dt_area_out: np.ndarray
    gt_group: np.ndarray
    gt_rank: np.ndarray
    gt_crowd: np.ndarray
    gt_ignore: np.ndarray
    group_video: np.ndarray
    group_category: np.ndarray
    ious: np.ndarray


def _match(mi: MatchInput, params: EvalParams) -> tuple[np.ndarray, np.ndarray]:
    """Greedy matching of all groups, batched by padded (D, G) size. Returns bool[D, T, A, O]."""
    n_d = mi.dt_group.shape[0]
    n_t = len(params.iou_thresholds)
    n_a, n_o = mi.gt_ignore.shape[1], mi.gt_ignore.shape[2]
    matched = np.zeros((n_d, n_t, n_a, n_o), dtype=bool)
    ignored = np.zeros((n_d, n_t, n_a, n_o), dtype=bool)
    if n_d == 0:
        return matched, ignored
    d_count = np.bincount(mi.dt_group, minlength=mi.num_groups)
    g_count = np.bincount(mi.gt_group, minlength=mi.num_groups)
    # Pair offsets: pairs of group p are its results × its ground truths, result-major.
    pair_count = d_count * g_count
    pair_first = np.cumsum(pair_count) - pair_count
    d_bucket = np.array([bucket(c, 4) for c in d_count])
    g_bucket = np.array([bucket(c, 4) for c in g_count])
    thresholds = jax.device_put(params.iou_array)
    for db, gb in sorted(set(zip(d_bucket.tolist(), g_bucket.tolist(), strict=True))):
        groups = np.flatnonzero((d_bucket == db) & (g_bucket == gb) & (d_count > 0))
        if groups.size == 0:
            continue
        local = np.full(mi.num_groups, -1, dtype=np.int64)
        local[groups] = np.arange(groups.size)
        pb = bucket(groups.size, 16)
        ious = np.zeros((pb, db, gb))
        gt_valid = np.zeros((pb, gb), dtype=bool)
        gt_crowd = np.zeros((pb, gb), dtype=bool)
        gt_ignore = np.zeros((pb, n_a, n_o, gb), dtype=bool)
        dt_valid = np.zeros((pb, db), dtype=bool)
        dt_area_out = np.zeros((pb, n_a, db), dtype=bool)
        gsel = np.flatnonzero(local[mi.gt_group] >= 0)
        gp, gr = local[mi.gt_group[gsel]], mi.gt_rank[gsel]
        gt_valid[gp, gr] = True
        gt_crowd[gp, gr] = mi.gt_crowd[gsel]
        gt_ignore[gp, :, :, gr] = mi.gt_ignore[gsel]
        dsel = np.flatnonzero(local[mi.dt_group] >= 0)
        dp, dr = local[mi.dt_group[dsel]], mi.dt_rank[dsel]
        dt_valid[dp, dr] = True
        dt_area_out[dp, :, dr] = mi.dt_area_out[dsel]
        # Scatter the IoUs of these groups' pairs.
        ng = g_count[groups]
        nd = d_count[groups]
        pc = nd * ng
        pair_idx = np.repeat(pair_first[groups], pc) + ragged_arange(pc)
        within = ragged_arange(pc)
        rep_g = np.repeat(ng, pc)
        ious[np.repeat(np.arange(groups.size), pc), within // rep_g, within % rep_g] = mi.ious[
            pair_idx
        ]
        m, ig = match_groups(
            jax.device_put(ious),
            jax.device_put(gt_valid),
            jax.device_put(gt_crowd),
            jax.device_put(gt_ignore),
            jax.device_put(dt_valid),
            jax.device_put(dt_area_out),
            thresholds,
        )
        m, ig = np.asarray(m), np.asarray(ig)
        matched[dsel] = m[dp, dr]
        ignored[dsel] = ig[dp, dr]
    return matched, ignored


class _Plan(NamedTuple):
    """The groups (host) and, per ground-truth track (file order), its group and position."""

    groups: Groups
    g_group: np.ndarray  # int64[G]
    g_rank: np.ndarray  # int64[G]


class _Flags(NamedTuple):
    matched: np.ndarray  # bool[D, T, A, O]
    ignored: np.ndarray  # bool[D, T, A, O]
    npig: np.ndarray  # int64[K, A, O]
    mi: MatchInput


def _accumulate(flags: _Flags, *, params: EvalParams, layout: CurveLayout):
    """Accumulation on the device (call under ``jax.enable_x64(True)``) of ``layout``'s
    categories only (the others are padding there): precision float64[T, R, K, I], recall
    float64[T, K, I] and scores float64[T, R, K, I] (NumPy; K the kept categories, I the kept
    slots, taken on the host)."""
    mi, n_k = flags.mi, layout.cats.shape[0]
    k_pad = bucket(n_k, 8)  # padded categories have no ground truth: sliced off below
    kept = flags.npig[layout.cats]
    npig = np.concatenate([kept, np.zeros((k_pad - n_k, *kept.shape[1:]), np.int64)])
    rows = np.full(layout.num_categories + 1, k_pad, dtype=np.int64)  # not kept: padding
    rows[layout.cats] = np.arange(n_k)
    n = mi.dt_group.shape[0]
    pad = bucket(n, 256) - n
    big = np.iinfo(np.int32).max

    def padded(x, fill):
        return jax.device_put(np.concatenate([x, np.full((pad, *x.shape[1:]), fill, x.dtype)]))

    precision, recall, scores = accumulate(
        padded(rows[mi.group_category[mi.dt_group]].astype(np.int32), k_pad),
        padded(mi.dt_score, 0.0),
        padded(mi.group_video[mi.dt_group].astype(np.int32), 0),
        padded(mi.dt_rank.astype(np.int32), big),
        padded(flags.matched, False),
        padded(flags.ignored, False),
        jax.device_put(npig.astype(np.int64)),
        jax.device_put(np.asarray(params.max_dets, dtype=np.int32)),
        jax.device_put(params.recall_array),
        num_categories=k_pad,
    )
    flat = layout.slots.reshape(-1)
    which = np.argsort(np.where(flat < 0, flat.size, flat))[: layout.num_slots]

    def take(x, lead):  # [..., K, A, O, M] -> [..., K, I], on the device
        x = x[(slice(None),) * lead + (slice(0, n_k),)]
        return np.asarray(x.reshape(*x.shape[: lead + 1], flat.size)[..., which])

    return take(precision, 2), take(recall, 1), take(scores, 2)


def _float64_device() -> contextlib.AbstractContextManager:
    """Where the float64 kernels run: the default device, except on a TPU (no native float64),
    where they run on the host CPU so that every comparison stays exact."""
    if jax.default_backend() == "tpu":
        return jax.default_device(jax.devices("cpu")[0])
    return contextlib.nullcontext()


def pair_frames(
    d_masks: MaskTable, g_masks: MaskTable, pair_d: np.ndarray, pair_g: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The (pair, result string, ground-truth string) of every frame whose intersection can be
    nonzero: both masks present and non-empty, their foreground spans overlapping.

    Args:
        d_masks, g_masks: the result and ground-truth tracks.
        pair_d, pair_g: int64[P] the tracks of each pair (same video).

    Returns:
        ``(pair, d_string, g_string)``: int64[J] each, the pair-frames, by pair.
    """
    length = d_masks.frame_start[pair_d + 1] - d_masks.frame_start[pair_d]
    pair = np.repeat(np.arange(pair_d.shape[0], dtype=np.int64), length)
    offset = ragged_arange(length)
    sd = d_masks.frame_string[d_masks.frame_start[pair_d][pair] + offset]
    sg = g_masks.frame_string[g_masks.frame_start[pair_g][pair] + offset]
    keep = np.flatnonzero((sd >= 0) & (sg >= 0))
    pair, sd, sg = pair[keep], sd[keep], sg[keep]
    keep = (
        (d_masks.string_area[sd] > 0)
        & (g_masks.string_area[sg] > 0)
        & (d_masks.string_first[sd] < g_masks.string_last[sg])
        & (g_masks.string_first[sg] < d_masks.string_last[sd])
    )
    return pair[keep], sd[keep], sg[keep]


class JaxBackend:
    """The ``jax`` backend: intersections, matching and accumulation as JAX kernels on JAX's
    default device (host NumPy for grouping, ranks and padding).

    Args:
        pair_intersections: ``f(pair_d, pair_g) -> int64[P]``, the exact intersections summed
            over frames of result ``pair_d[i]`` and ground-truth track ``pair_g[i]``; default:
            decoded and intersected on the device from the masks' bytes
            (:func:`~ovis_jax._src.backends.jax.device_rle.device_pair_intersections`).
        areas: int64[D] total pixels of each result; default: from ``results.masks``.
    """

    name = "jax"

    def __init__(self, *, pair_intersections=None, areas: np.ndarray | None = None) -> None:
        self._intersections = pair_intersections
        self._areas = areas

    def context(self) -> contextlib.AbstractContextManager:
        stack = contextlib.ExitStack()
        stack.enter_context(jax.enable_x64(True))
        stack.enter_context(_float64_device())
        return stack

    def plan(self, gt: GroundTruth, results, params: EvalParams) -> _Plan:
        groups = group_tracks(
            gt, results.video_id, results.category_id, results.score, max_det=params.max_dets[-1]
        )
        g_group = np.empty(groups.g_track.shape[0], dtype=np.int64)
        g_group[groups.g_track] = np.repeat(np.arange(groups.num_groups), np.diff(groups.g_start))
        g_rank = np.empty_like(g_group)
        g_rank[groups.g_track] = ragged_arange(np.diff(groups.g_start))
        return _Plan(groups, g_group, g_rank)

    def _pair_intersections(self, results, pair_d: np.ndarray, pair_g: np.ndarray, gt):
        if self._intersections is not None:
            return self._intersections(pair_d, pair_g)
        from ovis_jax._src.backends.jax.device_rle import device_pair_intersections

        d, g = results.masks, gt.masks
        pf_pair, pf_d, pf_g = pair_frames(d, g, pair_d, pair_g)
        return device_pair_intersections(
            d.chars, d.char_start, g.chars, g.char_start, pf_d, pf_g, pf_pair, pair_d.shape[0],
            d_values=d.string_values, g_values=g.string_values,
        )  # fmt: skip

    def track_ious(self, gt: GroundTruth, results, plan: _Plan) -> np.ndarray:
        pair_d, pair_g = plan.groups.pairs()
        logger.info("intersections of %d track pairs", pair_d.shape[0])
        inter = self._pair_intersections(results, pair_d, pair_g, gt)
        area = self._areas if self._areas is not None else results.masks.track_areas()
        n_pairs = pair_d.shape[0]
        pad = bucket(n_pairs, 64) - n_pairs
        return np.asarray(
            track_ious(
                np.pad(np.asarray(inter, dtype=np.int64), (0, pad)),
                jax.device_put(np.pad(np.asarray(area, dtype=np.int64)[pair_d], (0, pad))),
                jax.device_put(np.pad(gt.masks.track_areas()[pair_g], (0, pad))),
            )
        )[:n_pairs]

    def match(self, gt, results, plan: _Plan, ious: np.ndarray, params: EvalParams) -> _Flags:
        groups, n_k = plan.groups, gt.category_ids.shape[0]
        d_sel = groups.d_track
        gt_ignore = gt_ignore_flags(gt, params)
        mi = MatchInput(
            num_groups=groups.num_groups,
            dt_group=groups.d_group,
            dt_rank=groups.d_rank,
            dt_score=np.asarray(results.score, dtype=np.float64)[d_sel],
            dt_area_out=range_flags(
                np.asarray(results.avg_area, dtype=np.float64)[d_sel], params.area_bounds()
            ),
            gt_group=plan.g_group,
            gt_rank=plan.g_rank,
            gt_crowd=gt.iscrowd,
            gt_ignore=gt_ignore,
            group_video=groups.key // n_k,
            group_category=groups.key % n_k,
            ious=ious,
        )
        logger.info("matching of %d results", d_sel.shape[0])
        matched, ignored = _match(mi, params)
        return _Flags(matched, ignored, not_ignored_counts(gt, gt_ignore), mi)

    def accumulate(
        self, gt, results, plan: _Plan, flags: _Flags, params: EvalParams, *, scores, layout=None
    ):
        if layout is None:
            shape = (*flags.npig.shape[1:], len(params.max_dets))
            layout = CurveLayout.full(gt.category_ids.shape[0], shape)
        p, r, s = _accumulate(flags, params=params, layout=layout)
        return p, r, (s if scores else None)

    def match_records(self, gt, results, plan: _Plan, ious: np.ndarray, params: EvalParams):
        from ovis_jax._src.metrics.matches import match_records

        return match_records(gt, results, plan.groups, ious, params=params)

    # Frame-level and single-group work runs on the compiled CPU path (no device kernels).
    def pair_ious(self, gt, results, groups: Groups) -> np.ndarray:
        return get_backend("cpu").pair_ious(gt, results, groups)

    def greedy(self, ious, ignore, crowd, threshold: float) -> np.ndarray:
        return get_backend("cpu").greedy(ious, ignore, crowd, threshold)

    def frame_ious(self, gt, results, d: np.ndarray, g: np.ndarray):
        return get_backend("cpu").frame_ious(gt, results, d, g)


class _Tracks(NamedTuple):
    """Per-result metadata standing in for :class:`~ovis_jax.Results` (streaming)."""

    video_id: np.ndarray
    category_id: np.ndarray
    score: np.ndarray
    avg_area: np.ndarray
    warnings: tuple[str, ...]


def evaluate_tracks(
    gt: GroundTruth,
    *,
    video_id: np.ndarray,
    category_id: np.ndarray,
    score: np.ndarray,
    avg_area: np.ndarray,
    area: np.ndarray,
    pair_intersections: Callable[[np.ndarray, np.ndarray], np.ndarray],
    params: EvalParams | None = None,
    warnings: tuple[str, ...] = (),
) -> EvalResult:
    """Metric steps 5-12 from per-result metadata and a function giving exact intersections:
    the pipeline with the ``jax`` backend's stages, for the streaming evaluator.

    Args:
        gt: validated ground truth.
        video_id, category_id: int64[D] of each result, in "file order" (ties keep it).
        score: float64[D].
        avg_area: float64[D] mean of the non-null, non-zero per-frame areas.
        area: int64[D] total pixels of each result over its video's frames.
        pair_intersections: ``f(pair_d, pair_g) -> int64[P]``, the exact intersections summed
            over frames of result ``pair_d[i]`` and ground-truth track ``pair_g[i]``.
        params: evaluation parameters (the official ones by default).
        warnings: warnings to report with the result (after the ground truth's).

    Returns:
        The :class:`~ovis_jax.EvalResult` (no track-length pass, no matches).
    """
    from ovis_jax._src.backends.pipeline import run_pipeline

    tracks = _Tracks(video_id, category_id, score, avg_area, tuple(warnings))
    backend = JaxBackend(pair_intersections=pair_intersections, areas=area)
    return run_pipeline(backend, gt, tracks, params=params, lengths=False)
