"""The backend seam: the few operations a backend provides, and the registry that names them.

A backend computes the stages of the README's "The metric" that cost something; the one
pipeline (:mod:`ovis_jax._src.backends.pipeline`) calls them in order, the same for every
backend, and builds the result. Adding a backend is one class with these methods plus one
:func:`register_backend` line; the rest of the package never asks which backend runs.
"""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

import numpy as np

from ovis_jax._src.params import EvalParams

__all__ = ["Backend", "backend_names", "get_backend", "register_backend"]


@runtime_checkable
class Backend(Protocol):
    """What the pipeline needs from a backend.

    ``plan``, ``ious`` and ``flags`` are the backend's own objects: the pipeline only hands them
    from one stage to the next. ``gt`` / ``results`` are a :class:`~ovis_jax.GroundTruth` and a
    :class:`~ovis_jax.Results` (or the length views of them, for the track-length pass).
    """

    name: str

    def context(self) -> contextlib.AbstractContextManager:
        """The context the stages run in (e.g. scoped float64 on a JAX device)."""

    def plan(self, gt: Any, results: Any, params: EvalParams) -> Any:
        """Metric step 5: the (video, category) groups and the results kept in each."""

    def track_ious(self, gt: Any, results: Any, plan: Any) -> Any:
        """Metric step 6: the IoU of every (result, ground truth) pair of every group."""

    def match(self, gt: Any, results: Any, plan: Any, ious: Any, params: EvalParams) -> Any:
        """Metric steps 8-10: matched and ignored flags of the kept results."""

    def accumulate(
        self,
        gt: Any,
        results: Any,
        plan: Any,
        flags: Any,
        params: EvalParams,
        *,
        scores: bool,
        layout: Any = None,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """Metric step 11 in ``layout`` (a :class:`~ovis_jax._src.metrics.ap.curves.CurveLayout`:
        its kept categories K and slots I; every category and slot by default): precision
        float64[T, R, K, I], recall float64[T, K, I] and scores float64[T, R, K, I] (None
        unless ``scores``). A backend without ``layout`` returns the official arrays and the
        pipeline takes the layout's part."""  # fmt: skip

    def match_records(self, gt: Any, results: Any, plan: Any, ious: Any, params: EvalParams):
        """Per result, the ground truth it is matched to (:class:`~ovis_jax.Matches`)."""

    def pair_ious(self, gt: Any, results: Any, groups: Any) -> np.ndarray:
        """float64[P] track IoUs of the pairs of any ``Groups`` (``backends.grouping``)
        (e.g. every result of a video against every ground truth, for the error analysis)."""

    def greedy(
        self, ious: np.ndarray, ignore: np.ndarray, crowd: np.ndarray, threshold: float
    ) -> np.ndarray:
        """Metric step 9 for one group at one threshold: int64[D] the matched column of each
        result of float64[D, G] ``ious`` (score order), -1 if none."""

    def frame_ious(self, gt: Any, results: Any, d: np.ndarray, g: np.ndarray):
        """Per-frame IoUs of the (result ``d[i]``, ground truth ``g[i]``) pairs:
        ``(float64[E] ious, bool[E] either non-empty, int64[P + 1] offsets)``, pair after
        pair, every frame of the video."""


#: name -> "module:attribute" of a zero-argument factory; imported on first use so that
#: choosing the ``cpu`` backend never imports JAX.
_REGISTRY: dict[str, str | Callable[[], Backend]] = {
    "cpu": "ovis_jax._src.backends.cpu.backend:CpuBackend",
    "jax": "ovis_jax._src.backends.jax.backend:JaxBackend",
    "reference": "ovis_jax._src.backends.reference:ReferenceBackend",
}


def register_backend(name: str, factory: str | Callable[[], Backend]) -> None:
    """Makes ``backend=name`` available: ``factory`` is a callable returning a
    :class:`Backend`, or its ``"module:attribute"`` path (imported on first use)."""
    _REGISTRY[name] = factory


def backend_names() -> tuple[str, ...]:
    """The registered backend names, in registration order."""
    return tuple(_REGISTRY)


def get_backend(name: str) -> Backend:
    """A new instance of the backend registered as ``name``.

    Raises:
        ValueError: for a name that is not registered.
    """
    factory = _REGISTRY.get(name)
    if factory is None:
        raise ValueError(f"unknown backend {name!r}, expected one of {backend_names()}")
    if isinstance(factory, str):
        module, _, attr = factory.partition(":")
        factory = getattr(importlib.import_module(module), attr)
    return factory()
