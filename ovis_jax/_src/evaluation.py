"""The one-call entry point: :func:`evaluate` files or parsed objects with a chosen backend."""

from __future__ import annotations

import dataclasses
import importlib.util
import logging
import os
import sys
import time
from typing import Any

from ovis_jax._src.loading import GroundTruth, Results, load_ground_truth, load_results
from ovis_jax._src.params import EvalParams
from ovis_jax._src.summary import EvalResult

__all__ = ["BACKENDS", "accelerator_present", "evaluate", "resolve_backend"]

logger = logging.getLogger(__name__)

BACKENDS = ("cpu", "jax", "reference")

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
    lengths: bool = True,
    matches: bool = False,
    errors: bool = False,
) -> EvalResult:
    """Evaluates results against ground truth: the official OVIS / YouTube-VIS video mask AP.

    Args:
        gt: a :class:`GroundTruth`, a path to the ground-truth JSON, or its parsed object.
        results: a :class:`Results`, a path to the results JSON, or its parsed list.
        backend: ``"auto"`` (default: ``"jax"`` when an accelerator is present and the data is
            large, else ``"cpu"``), ``"cpu"`` (compiled numba kernels; never imports JAX),
            ``"jax"`` (JAX kernels on JAX's default device, from the masks' bytes) or
            ``"reference"`` (the plain NumPy + pycocotools oracle). All give the same numbers.
        params: evaluation parameters; the official ones by default.
        lengths: also compute AP / AR by track length (``length_stats``, ``length_precision``,
            ``length_recall``); a second matching over the same IoUs.
        matches: also record, per result, the ground truth it is matched to
            (``EvalResult.matches``, a :class:`~ovis_jax.Matches`).
        errors: also run the error analysis (``EvalResult.errors``).

    Returns:
        The :class:`EvalResult` (named stats, precision [T, R, K, A, O, M], recall
        [T, K, A, O, M], scores, per-category numbers, the length breakdown, warnings, the
        backend that ran, timings; matches and errors when asked for).

    Raises:
        FormatError: on a malformed input, naming the item.
        ValueError: on an unknown backend.
    """
    if backend != "auto" and backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}, expected 'auto' or one of {BACKENDS}")
    params = params or EvalParams()
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    if not isinstance(gt, GroundTruth):
        gt = load_ground_truth(gt)
        timings["load_gt"] = time.perf_counter() - t0
    t1 = time.perf_counter()
    if not isinstance(results, Results):
        results = load_results(results, gt)
        timings["load_results"] = time.perf_counter() - t1
    chosen = resolve_backend(backend, gt, results)
    logger.info("backend: %s", chosen)
    t2 = time.perf_counter()
    options = {"params": params, "lengths": lengths, "matches": matches}
    if chosen == "reference":
        from ovis_jax._src.reference import evaluate_reference

        result = evaluate_reference(gt, results, **options)
    elif chosen == "cpu":
        from ovis_jax._src.cpu_backend import evaluate_cpu

        result = evaluate_cpu(gt, results, **options)
    else:
        from ovis_jax._src.jax_backend import evaluate_jax

        result = evaluate_jax(gt, results, **options)
    timings.update(result.timings or {"evaluate": time.perf_counter() - t2})
    analysis = None
    if errors:
        from ovis_jax._src.error_analysis import analyze_errors

        t3 = time.perf_counter()
        # Its IoUs come from the numba kernels, or pycocotools for the reference backend.
        analysis = analyze_errors(
            gt, results, params=params, backend="reference" if chosen == "reference" else "cpu"
        )
        timings["errors"] = time.perf_counter() - t3
    return dataclasses.replace(result, backend=chosen, timings=timings, errors=analysis)
