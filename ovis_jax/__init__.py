"""ovis_jax: exact, fast OVIS / YouTube-VIS video instance segmentation evaluation in JAX."""

from ovis_jax.errors import FormatError
from ovis_jax.evaluation import BACKENDS, evaluate
from ovis_jax.loading import GroundTruth, Results, Video, load_ground_truth, load_results
from ovis_jax.params import EvalParams
from ovis_jax.summary import EvalResult, format_per_category, format_summary, summarize

__version__ = "0.1.0"

__all__ = [
    "BACKENDS",
    "EvalParams",
    "EvalResult",
    "FormatError",
    "GroundTruth",
    "Results",
    "Video",
    "evaluate",
    "format_per_category",
    "format_summary",
    "load_ground_truth",
    "load_results",
    "summarize",
]
