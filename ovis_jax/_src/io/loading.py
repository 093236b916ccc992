"""Compatibility re-exports of the input package (``io.model``, ``io.read``, ``io.vis``) for
the modules outside ``io`` that still import from here (backends, ``evaluation``,
``metrics``, ``cli``); new code imports the modules
themselves."""

from __future__ import annotations

from ovis_jax._src.io.model import DataFormat, GroundTruth, Results, UnknownResults, Video
from ovis_jax._src.io.read import parse_untyped, read_bytes
from ovis_jax._src.io.vis import NO_ANNOTATIONS, fingerprint, load_ground_truth, load_results

_fingerprint = fingerprint  # metrics/ap/subsets.py imports this name

__all__ = [
    "NO_ANNOTATIONS",
    "DataFormat",
    "GroundTruth",
    "Results",
    "UnknownResults",
    "Video",
    "fingerprint",
    "load_ground_truth",
    "load_results",
    "parse_untyped",
    "read_bytes",
]
