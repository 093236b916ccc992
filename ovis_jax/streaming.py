"""Streaming evaluation for JAX training loops: the public names of :mod:`~evaluator`.

Importing this module imports JAX.
"""

from __future__ import annotations

from ovis_jax._src.streaming.evaluator import StreamingEvaluator, StreamingState, resize_masks

__all__ = ["StreamingEvaluator", "StreamingState", "resize_masks"]
