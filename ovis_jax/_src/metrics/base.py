"""The metric seam: what a metric beside the AP needs from the pipeline and what it returns.

The AP is the pipeline's own result (:class:`~ovis_jax.EvalResult`). Every other metric is an
object with a ``name``, a :meth:`Metric.compute` that receives a :class:`MetricContext` (the
validated files, the backend object with its track / per-frame IoUs and greedy walk, the AP
result, the category groups) and returns the metric's own result, and two renderers (the
entries it adds to the ``--json`` document, its text block). Results hang off
``EvalResult.metrics[name]``. Adding a metric is its own file plus one
:func:`register_metric` line; nothing else in the package changes.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple, Protocol, runtime_checkable

import numpy as np

from ovis_jax._src.params import EvalParams

__all__ = [
    "Metric",
    "MetricContext",
    "get_metric",
    "metric_names",
    "register_metric",
    "resolve_metrics",
]


class MetricContext(NamedTuple):
    """What the pipeline hands a metric.

    Attributes:
        gt: the validated :class:`~ovis_jax.GroundTruth` (restricted to a subset's videos when
            the metric runs for a subset).
        results: the validated :class:`~ovis_jax.Results` for it.
        params: the evaluation parameters.
        backend: the :class:`~ovis_jax._src.backends.base.Backend` object that ran the AP
            (``pair_ious``, ``frame_ious``, ``greedy``).
        ap: the AP result of the same files.
        groups: per category group name, int64[K'] its category ids.
    """

    gt: Any
    results: Any
    params: EvalParams
    backend: Any
    ap: Any
    groups: Mapping[str, np.ndarray]


@runtime_checkable
class Metric(Protocol):
    """A metric computed beside the AP (see the module docstring)."""

    name: str

    def compute(self, ctx: MetricContext) -> Any:
        """The metric's result for the files of ``ctx``."""

    def json_entries(self, value: Any) -> dict[str, Any]:
        """The entries ``value`` adds to the ``--json`` document (top-level keys)."""

    def format_text(self, value: Any) -> str:
        """The text block printed after the AP summary."""


#: name -> "module:attribute" of a factory taking keyword options; imported on first use.
_REGISTRY: dict[str, str | Callable[..., Metric]] = {
    "errors": "ovis_jax._src.metrics.tive:ErrorsMetric",
    "hota": "ovis_jax._src.metrics.tracking.api:hota_metric",
    "clear": "ovis_jax._src.metrics.tracking.api:clear_metric",
    "identity": "ovis_jax._src.metrics.tracking.api:identity_metric",
}


def register_metric(name: str, factory: str | Callable[..., Metric]) -> None:
    """Makes ``metrics=(name,)`` available: ``factory(**options)`` returns a :class:`Metric`
    (or give its ``"module:attribute"`` path, imported on first use)."""
    _REGISTRY[name] = factory


def metric_names() -> tuple[str, ...]:
    """``"ap"`` (always computed) and the registered metric names."""
    return ("ap", *_REGISTRY)


def get_metric(name: str, **options: Any) -> Metric:
    """A new instance of the metric registered as ``name``, with ``options``.

    Raises:
        ValueError: for a name that is not registered.
    """
    factory = _REGISTRY.get(name)
    if factory is None:
        raise ValueError(f"unknown metric {name!r}, expected some of {metric_names()}")
    if isinstance(factory, str):
        module, _, attr = factory.partition(":")
        factory = getattr(importlib.import_module(module), attr)
    return factory(**options)


def resolve_metrics(
    metrics: Any, options: Mapping[str, Mapping[str, Any]] | None = None
) -> tuple[Metric, ...]:
    """The metric objects of ``metrics`` (names, :class:`Metric` objects, or a comma-separated
    string), ``"ap"`` dropped (the pipeline computes it), duplicates removed, order kept;
    ``options[name]`` are the keyword options of a named metric."""
    if isinstance(metrics, str):
        metrics = [m.strip() for m in metrics.split(",") if m.strip()]
    out: dict[str, Metric] = {}
    for m in metrics or ():
        if isinstance(m, str):
            m = m.strip()
            if m in ("ap", "") or m in out:
                continue
            m = get_metric(m, **dict((options or {}).get(m, {})))
        if m.name in out and hasattr(out[m.name], "merge"):
            out[m.name] = out[m.name].merge(m)  # e.g. the tracking families: one pass
        else:
            out.setdefault(m.name, m)
    return tuple(out.values())
