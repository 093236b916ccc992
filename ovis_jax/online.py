"""Online evaluation for training loops of any framework (PyTorch / detectron2 included): the
public names of :mod:`ovis_jax._src.online.evaluator`.

Importing this module imports neither JAX nor torch (JAX is imported by the ``"device"`` path
and by the ``"jax"`` backend only).
"""

from __future__ import annotations

from ovis_jax._src.online.evaluator import OnlineEvaluator, Prediction

__all__ = ["OnlineEvaluator", "Prediction"]
