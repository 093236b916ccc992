"""The one pipeline: the stages of "The metric" in order, for every backend.

group (step 5) → track IoUs (step 6) → matching (steps 8-10) → accumulation (step 11) → the
track-length pass (same IoUs, track lengths in place of areas) → per-result matches → the
:class:`~ovis_jax.EvalResult`. What each stage costs is the backend's business
(:class:`~ovis_jax._src.backends.base.Backend`); the order, the progress stages and the
timings are this module's.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

from ovis_jax._src.backends.base import Backend
from ovis_jax._src.backends.grouping import length_views
from ovis_jax._src.metrics.ap.summary import EvalResult, result_from_arrays
from ovis_jax._src.params import EvalParams
from ovis_jax._src.progress import Stopwatch, stage

__all__ = ["run_pipeline"]

logger = logging.getLogger(__name__)


def run_pipeline(
    backend: Backend,
    gt: Any,
    results: Any,
    *,
    params: EvalParams | None = None,
    lengths: bool = True,
    matches: bool = False,
    warnings: tuple[str, ...] | None = None,
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

    Returns:
        The :class:`~ovis_jax.EvalResult`; ``timings`` has the seconds of each stage.
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
        precision, recall, scores = backend.accumulate(
            gt, results, plan, flags, params, scores=True
        )
        watch.lap("accumulation")
        length = None
        if lengths:
            gt_l, res_l, params_l = length_views(gt, results, params)
            flags_l = backend.match(gt_l, res_l, plan, ious, params_l)
            lp, lr, _ = backend.accumulate(gt_l, res_l, plan, flags_l, params_l, scores=False)
            length = (params_l, lp, lr)
            watch.lap("length_ranges")
        found = backend.match_records(gt, results, plan, ious, params) if matches else None
        if matches:
            watch.lap("matches")
    out = result_from_arrays(
        gt, precision, recall, params=params, scores=scores, length=length,
        warnings=tuple(results.warnings if warnings is None else warnings),
    )  # fmt: skip
    watch.lap("summary")
    return dataclasses.replace(out, matches=found, backend=backend.name, timings=watch.timings)
