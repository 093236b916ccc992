"""The one-call entry point: :func:`evaluate` files or parsed objects with a chosen backend."""

from __future__ import annotations

import logging
from typing import Any

from ovis_jax.loading import GroundTruth, Results, load_ground_truth, load_results
from ovis_jax.params import EvalParams
from ovis_jax.summary import EvalResult

__all__ = ["BACKENDS", "evaluate"]

logger = logging.getLogger(__name__)

BACKENDS = ("jax", "reference")


def evaluate(
    gt: Any,
    results: Any,
    *,
    backend: str = "jax",
    params: EvalParams | None = None,
    intersections: str = "auto",
) -> EvalResult:
    """Evaluates results against ground truth: the official OVIS / YouTube-VIS video mask AP.

    Args:
        gt: a :class:`GroundTruth`, a path to the ground-truth JSON, or its parsed object.
        results: a :class:`Results`, a path to the results JSON, or its parsed list.
        backend: ``"jax"`` (batched JIT kernels, the default) or ``"reference"`` (the plain
            NumPy + pycocotools oracle).
        params: evaluation parameters; the official ones by default.
        intersections: JAX backend only: ``"auto"`` (default), ``"host"`` or ``"device"``,
            where the run-length mask intersections are computed (both exact; on a CPU the
            host path is faster, on a GPU the device kernel).

    Returns:
        The :class:`EvalResult` (named stats, precision [T, R, K, A, O, M], recall
        [T, K, A, O, M], per-category numbers, warnings).

    Raises:
        FormatError: on a malformed input, naming the item.
        ValueError: on an unknown backend.
    """
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}, expected one of {BACKENDS}")
    params = params or EvalParams()
    if not isinstance(gt, GroundTruth):
        gt = load_ground_truth(gt)
    if not isinstance(results, Results):
        results = load_results(results, gt)
    if backend == "reference":
        from ovis_jax.reference import evaluate_reference

        return evaluate_reference(gt, results, params=params)
    from ovis_jax.backend import evaluate_jax

    return evaluate_jax(gt, results, params=params, intersections=intersections)
