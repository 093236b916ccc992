"""The one-call entry point: :func:`evaluate` files or parsed objects with a chosen backend."""

from __future__ import annotations

import dataclasses
import importlib.util
import logging
import os
import sys
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from ovis_jax._src.backends.base import backend_names, get_backend
from ovis_jax._src.backends.pipeline import run_pipeline
from ovis_jax._src.errors import FormatError
from ovis_jax._src.io.model import GroundTruth, Results
from ovis_jax._src.io.vis import NO_ANNOTATIONS, load_ground_truth, load_results
from ovis_jax._src.metrics.ap.subsets import (
    group_stats,
    groups_of,
    restrict_ground_truth,
    restrict_results,
    subset_video_ids,
)
from ovis_jax._src.metrics.ap.summary import EvalResult
from ovis_jax._src.metrics.base import MetricContext, resolve_metrics
from ovis_jax._src.params import EvalParams
from ovis_jax._src.progress import Stopwatch, finished

__all__ = ["BACKENDS", "accelerator_present", "evaluate", "resolve_backend"]

logger = logging.getLogger(__name__)

BACKENDS = backend_names()

#: Below this many bytes of RLE strings, ``backend="auto"`` stays on the CPU even when an
#: accelerator is present (transfers and kernel launches would not pay; not yet measured on
#: a GPU, see benchmarks/RESULTS.md).
AUTO_DEVICE_MIN_BYTES = 1 << 24

_ACCELERATOR_PLUGINS = ("jax_cuda12_plugin", "jax_cuda13_plugin", "jax_rocm60_plugin", "libtpu")


def accelerator_present() -> bool:
    """Whether JAX would run on a GPU/TPU, found without importing JAX when it cannot
    (no accelerator plugin installed and ``JAX_PLATFORMS`` not naming one)."""
    platforms = os.environ.get("JAX_PLATFORMS", "")
    if platforms and all(p.strip() == "cpu" for p in platforms.split(",")):
        return False
    if "jax" not in sys.modules and not any(
        importlib.util.find_spec(name) is not None for name in _ACCELERATOR_PLUGINS
    ):
        return False
    import jax

    return jax.default_backend() != "cpu"


def resolve_backend(backend: str, gt: GroundTruth, results: Results) -> str:
    """The backend that ``backend="auto"`` (or any other choice) runs for this input."""
    if backend != "auto":
        return backend
    size = gt.masks.chars.shape[0] + results.masks.chars.shape[0]
    if size >= AUTO_DEVICE_MIN_BYTES and accelerator_present():
        return "jax"
    return "cpu"


def evaluate(
    gt: Any,
    results: Any,
    *,
    backend: str = "auto",
    params: EvalParams | None = None,
    subsets: Mapping[str, Iterable[int]] | None = None,
    groups: Mapping[str, Iterable[int]] | None = None,
    lengths: bool = True,
    matches: bool = False,
    errors: bool = False,
    metrics: Any = ("ap",),
    metric_options: Mapping[str, Mapping[str, Any]] | None = None,
    arrays: bool = False,
) -> EvalResult:
    """Evaluates results against ground truth: the official OVIS / YouTube-VIS video mask AP.

    Args:
        gt: a :class:`GroundTruth`, a path to the ground-truth JSON (or ``.json.gz``, or a zip
            holding it), or its parsed object.
        results: a :class:`Results`, a path to the results JSON (or ``.json.gz``, or a zip
            holding it, e.g. a server submission), or its parsed list.
        backend: ``"auto"`` (default: ``"jax"`` when an accelerator is present and the data is
            large, else ``"cpu"``), ``"cpu"`` (compiled numba kernels; never imports JAX),
            ``"jax"`` (JAX kernels on JAX's default device, from the masks' bytes) or
            ``"reference"`` (the plain NumPy + pycocotools oracle). All give the same numbers.
        params: evaluation parameters; the official ones by default.
        subsets: ``{name: video ids}``: each subset is also evaluated on its own, as the
            YouTube-VIS 2022 script evaluates its short and long videos (the subset's videos
            and their annotations, all categories; results of other videos left out).
        groups: ``{name: category ids}``: the summary numbers restricted to each group's
            categories. With LV-VIS ``partition`` labels, ``base`` and ``novel`` are added.
        lengths: also compute AP / AR by track length (``length_stats``, ``length_precision``,
            ``length_recall``); a second matching over the same IoUs.
        matches: also record, per result, the ground truth it is matched to
            (``EvalResult.matches``, a :class:`~ovis_jax.Matches`).
        errors: also run the error analysis (``EvalResult.errors``); the same as adding
            ``"errors"`` to ``metrics``.
        metrics: the metrics to compute: ``"ap"`` (always computed) and any registered
            metric name (``"errors"``, ...) or :class:`~ovis_jax._src.metrics.base.Metric`
            object, or a comma-separated string. Each result is ``EvalResult.metrics[name]``
            (for every subset too).
        metric_options: per metric name, keyword options of its factory.
        arrays: compute the official precision / recall / scores arrays (and the length
            pass's) during the evaluation. Otherwise only what the summary, the per-category
            rows, the groups and the plots read is kept (the categories with ground truth, the
            summary's slots), and ``result.precision`` / ``recall`` / ``scores`` are computed
            on first read (the same numbers; the result holds what that needs until then).

    Returns:
        The :class:`EvalResult` (named stats, precision [T, R, K, A, O, M], recall
        [T, K, A, O, M], scores, per-category numbers, the length breakdown, subsets, groups,
        warnings, the backend that ran, timings; matches and errors when asked for).

    Raises:
        FormatError: on a malformed input, naming the item, or a ground truth without
            annotations.
        ValueError: on an unknown backend, or a subset / group naming unknown ids.
        ResourceError: when the arrays would not fit in memory (a ``MemoryError`` and a
            ``ValueError``), saying how much they need and how to reduce it.
    """
    if backend != "auto" and backend not in backend_names():
        raise ValueError(
            f"unknown backend {backend!r}, expected 'auto' or one of {backend_names()}"
        )
    params = params or EvalParams()
    watch = Stopwatch()
    if not isinstance(gt, GroundTruth):
        gt = load_ground_truth(gt)
        watch.lap("load_gt")
    if not gt.has_annotations:
        raise FormatError(NO_ANNOTATIONS)
    if not isinstance(results, Results):
        results = load_results(results, gt)
        watch.lap("load_results")
    subset_ids = {
        name: subset_video_ids(gt, ids, name=name) for name, ids in (subsets or {}).items()
    }
    group_ids = groups_of(gt, groups)
    extra = resolve_metrics(
        [
            *(metrics.split(",") if isinstance(metrics, str) else metrics or ()),
            *["errors"] * errors,
        ],
        metric_options,
    )
    chosen = resolve_backend(backend, gt, results)
    logger.info("backend: %s", chosen)
    engine = get_backend(chosen)
    options = {"params": params, "lengths": lengths, "arrays": arrays}
    result = run_pipeline(engine, gt, results, **options, matches=matches)
    timings = {**watch.timings, **result.timings}
    watch = Stopwatch()
    evaluated = {}
    for name, ids in subset_ids.items():
        sub_gt, sub_res = restrict_ground_truth(gt, ids), restrict_results(results, ids)
        sub = _with_groups(run_pipeline(engine, sub_gt, sub_res, **options), group_ids)
        evaluated[name] = _with_metrics(sub, extra, sub_gt, sub_res, engine, group_ids)
    if evaluated:
        watch.lap("subsets")
    warnings = list(result.warnings) + _subset_warnings(evaluated)
    result = _with_metrics(
        _with_groups(result, group_ids), extra, gt, results, engine, group_ids, watch
    )
    finished(logger)
    return dataclasses.replace(
        result,
        timings={**timings, **watch.timings},
        subsets=evaluated,
        warnings=tuple(warnings),
    )


def _with_metrics(result, extra, gt, results, engine, group_ids, watch=None) -> EvalResult:
    """``result`` with each metric of ``extra`` computed through the metric seam."""
    if not extra:
        return result
    ctx = MetricContext(gt, results, result.params, engine, result, dict(group_ids))
    values = {}
    for metric in extra:
        values[metric.name] = metric.compute(ctx)
        if watch is not None:
            watch.lap(metric.name)
    objects = {m.name: m for m in extra}
    return dataclasses.replace(result, metrics=values, metric_objects=objects)


def _with_groups(result: EvalResult, group_ids: Mapping[str, np.ndarray]) -> EvalResult:
    return dataclasses.replace(
        result,
        groups={name: group_stats(result, ids) for name, ids in group_ids.items()},
        group_categories=dict(group_ids),
    )


def _subset_warnings(subsets: Mapping[str, EvalResult]) -> list[str]:
    undefined = [name for name, sub in subsets.items() if sub.stats["AP"] == -1]
    warnings = [
        f"subset {name!r} has no ground-truth tracks: its numbers are -1 (undefined)"
        for name in undefined
    ]
    if {"short", "long"} <= set(subsets) and {"short", "long"} & set(undefined):
        warnings.append(
            "the YouTube-VIS 2022 mAP averages an undefined (-1) AP, as the official script does"
        )
    return warnings
