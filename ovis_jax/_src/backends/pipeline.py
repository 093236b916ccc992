"""The one pipeline: the stages of "The metric" in order, for every backend.

group (step 5) → track IoUs (step 6) → matching (steps 8-10) → accumulation (step 11) → the
track-length pass (same IoUs, track lengths in place of areas) → per-result matches → the
:class:`~ovis_jax.EvalResult`. What each stage costs is the backend's business
(:class:`~ovis_jax._src.backends.base.Backend`); the order, the progress stages and the
timings are this module's.

Accumulation keeps only what the summary, the per-category rows, the groups and the plots read
(:class:`~ovis_jax._src.metrics.ap.curves.CurveLayout`: the categories with ground truth, the
summary's slots) unless the official arrays are asked for (``arrays=True``); otherwise they are
computed on first read. Every allocation that grows with the categories is estimated first and
refused (:class:`~ovis_jax._src.errors.ResourceError`) when it cannot fit.
"""

from __future__ import annotations

import dataclasses
import inspect
import logging
from typing import Any

import numpy as np

from ovis_jax._src.backends.base import Backend
from ovis_jax._src.backends.grouping import gt_ignore_flags, length_views, not_ignored_counts
from ovis_jax._src.metrics.ap.curves import CurveLayout, Curves, LazyCurves, check_fits
from ovis_jax._src.metrics.ap.summary import (
    EvalResult,
    length_slots,
    result_from_curves,
    summary_slots,
)
from ovis_jax._src.params import EvalParams
from ovis_jax._src.progress import Stopwatch, stage

__all__ = ["accumulate_curves", "curve_layout", "run_pipeline"]

logger = logging.getLogger(__name__)

_HINT_FULL = (
    "leave the full arrays out (no --arrays, evaluate(..., arrays=False)): the summary and the "
    "per-category numbers need much less"
)
_HINT_COMPACT = (
    "evaluate the categories in parts (a ground truth restricted to some categories each time) "
    "or on a machine with more memory"
)


def curve_layout(gt: Any, params: EvalParams, *, full: bool, length: bool = False) -> CurveLayout:
    """What an accumulation of ``gt`` keeps: everything (``full``), or the categories with a
    not-ignored ground truth and the slots the summary (or, with ``length``, the length
    summary) reads."""
    npig = not_ignored_counts(gt, gt_ignore_flags(gt, params))
    n_m = len(params.max_dets)
    if full:
        return CurveLayout.full(npig.shape[0], (*npig.shape[1:], n_m))
    if length:
        keep = length_slots(npig.shape[1], n_m)
    else:
        keep = summary_slots(params, with_occlusion=gt.has_occlusion)
    return CurveLayout.kept(npig, keep, n_m)


def accumulate_curves(
    backend: Backend, gt, results, plan, flags, params: EvalParams, layout: CurveLayout, *,
    scores: bool, what: str = "the precision / recall arrays",
) -> Curves:  # fmt: skip
    """Metric step 11 in ``layout``, after checking that it fits in memory.

    Raises:
        ResourceError: when the arrays would not fit, saying how much they need.
    """
    n_t, n_r = len(params.iou_thresholds), len(params.recall_thresholds)
    full = layout.is_full
    check_fits(
        f"{what} ({n_t}×{n_r}×{layout.cats.shape[0]} categories×{layout.num_slots} slots"
        f"{', with scores' if scores else ''})",
        layout.nbytes(n_t, n_r, scores=scores),
        hint=_HINT_FULL if full else _HINT_COMPACT,
    )
    if "layout" in inspect.signature(backend.accumulate).parameters:
        p, r, s = backend.accumulate(gt, results, plan, flags, params, scores=scores, layout=layout)
    else:  # a backend written before layouts: the official arrays, then the layout's part
        p, r, s = backend.accumulate(gt, results, plan, flags, params, scores=scores)
        p, r, s = _take(layout, p, r, s)
    return Curves(layout, p, r, s if scores else None)


def _take(layout: CurveLayout, p, r, s):
    """The layout's part of official arrays [T, R, K, A, O, M] / [T, K, A, O, M]."""
    flat = layout.slots.reshape(-1)
    which = np.argsort(np.where(flat < 0, flat.size, flat))[: layout.num_slots]
    cats = layout.cats

    def take6(x):
        return np.ascontiguousarray(x.reshape(*x.shape[:3], flat.size)[:, :, cats][..., which])

    r4 = np.ascontiguousarray(r.reshape(*r.shape[:2], flat.size)[:, cats][..., which])
    return take6(p), r4, (None if s is None else take6(s))


def _lazy(backend, gt, results, plan, flags, params, layout, *, scores, what) -> LazyCurves:
    def compute():
        with backend.context():
            return accumulate_curves(
                backend, gt, results, plan, flags, params, layout, scores=scores, what=what
            )

    return LazyCurves(compute)


def run_pipeline(
    backend: Backend,
    gt: Any,
    results: Any,
    *,
    params: EvalParams | None = None,
    lengths: bool = True,
    matches: bool = False,
    warnings: tuple[str, ...] | None = None,
    arrays: bool = False,
) -> EvalResult:
    """Runs metric steps 5-12 with ``backend``'s stages.

    Args:
        backend: the stages' implementation.
        gt: validated ground truth.
        results: validated results for it (or an object with the fields the backend reads).
        params: evaluation parameters (the official ones by default).
        lengths: also run the track-length pass (AP by track length, same IoUs).
        matches: also record each result's matching (``EvalResult.matches``).
        warnings: the warnings to report (default: ``results.warnings``).
        arrays: compute the official precision / recall / scores arrays now; otherwise only
            what the summary reads, the arrays on first read.

    Returns:
        The :class:`~ovis_jax.EvalResult`; ``timings`` has the seconds of each stage.

    Raises:
        ResourceError: when the accumulation's arrays would not fit in memory.
    """
    params = params or EvalParams()
    watch = Stopwatch()
    stage(logger, "decode")
    with backend.context():
        plan = backend.plan(gt, results, params)
        watch.lap("grouping")
        stage(logger, "intersections")
        ious = backend.track_ious(gt, results, plan)
        watch.lap("intersections")
        stage(logger, "matching")
        flags = backend.match(gt, results, plan, ious, params)
        watch.lap("matching")
        layout = curve_layout(gt, params, full=arrays)
        curves = accumulate_curves(backend, gt, results, plan, flags, params, layout, scores=arrays)
        full = None
        if not arrays:
            full = _lazy(
                backend, gt, results, plan, flags, params,
                CurveLayout.full(layout.num_categories, layout.slots.shape), scores=True,
                what="the official precision / recall / scores arrays",
            )  # fmt: skip
        watch.lap("accumulation")
        length = None
        if lengths:
            gt_l, res_l, params_l = length_views(gt, results, params)
            flags_l = backend.match(gt_l, res_l, plan, ious, params_l)
            layout_l = curve_layout(gt_l, params_l, full=arrays, length=True)
            lc = accumulate_curves(
                backend, gt_l, res_l, plan, flags_l, params_l, layout_l, scores=False,
                what="the track-length arrays",
            )  # fmt: skip
            lfull = None
            if not arrays:
                lfull = _lazy(
                    backend, gt_l, res_l, plan, flags_l, params_l,
                    CurveLayout.full(layout_l.num_categories, layout_l.slots.shape),
                    scores=False, what="the official track-length arrays",
                )  # fmt: skip
            length = (params_l, lc, lfull)
            watch.lap("length_ranges")
        found = backend.match_records(gt, results, plan, ious, params) if matches else None
        if matches:
            watch.lap("matches")
    out = result_from_curves(
        gt, curves, params=params, full=full, length=length,
        warnings=tuple(results.warnings if warnings is None else warnings),
    )  # fmt: skip
    watch.lap("summary")
    return dataclasses.replace(out, matches=found, backend=backend.name, timings=watch.timings)
