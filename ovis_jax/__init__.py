"""ovis_jax: exact, fast OVIS / YouTube-VIS video instance segmentation evaluation in JAX."""

from ovis_jax._src.backends.base import Backend, register_backend
from ovis_jax._src.errors import FormatError
from ovis_jax._src.evaluation import BACKENDS, evaluate
from ovis_jax._src.io.cocovid import convert_cocovid
from ovis_jax._src.io.export import save_arrays
from ovis_jax._src.io.model import DataFormat, GroundTruth, Results, Video
from ovis_jax._src.io.vis import load_ground_truth, load_results
from ovis_jax._src.metrics.ap.summary import (
    EvalResult,
    format_length,
    format_per_category,
    format_summary,
    summarize,
)
from ovis_jax._src.metrics.base import Metric, MetricContext, register_metric
from ovis_jax._src.metrics.matches import Matches, write_matches
from ovis_jax._src.params import EvalParams
from ovis_jax._src.workflow.check import CheckReport, check_results
from ovis_jax._src.workflow.pack import pack_results
from ovis_jax._src.workflow.split import split_ground_truth

__version__ = "0.1.0"

# The streaming evaluator imports JAX at module level; load it on first use so that
# `import ovis_jax` (and the CLI with the reference backend) stays light.
_LAZY = {
    "StreamingEvaluator": "ovis_jax.streaming",
    "StreamingState": "ovis_jax.streaming",
    "resize_masks": "ovis_jax.streaming",
    "plot_results": "ovis_jax._src.metrics.plots",
    "analyze_errors": "ovis_jax._src.metrics.tive",
    "format_errors": "ovis_jax._src.metrics.tive",
    "tracking_metrics": "ovis_jax._src.metrics.tracking.api",
    "TrackingResult": "ovis_jax._src.metrics.tracking.api",
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'ovis_jax' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)


__all__ = [
    "BACKENDS",
    "Backend",
    "CheckReport",
    "DataFormat",
    "EvalParams",
    "EvalResult",
    "FormatError",
    "GroundTruth",
    "Matches",
    "Metric",
    "MetricContext",
    "Results",
    "StreamingEvaluator",
    "StreamingState",
    "TrackingResult",
    "Video",
    "analyze_errors",
    "check_results",
    "convert_cocovid",
    "evaluate",
    "format_errors",
    "format_length",
    "format_per_category",
    "format_summary",
    "load_ground_truth",
    "load_results",
    "pack_results",
    "plot_results",
    "register_backend",
    "register_metric",
    "resize_masks",
    "save_arrays",
    "split_ground_truth",
    "summarize",
    "tracking_metrics",
    "write_matches",
]
