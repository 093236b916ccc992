"""Evaluators for training loops that are not JAX-native: :class:`OnlineEvaluator`
(framework-neutral, for PyTorch / detectron2-style loops) in :mod:`.evaluator`, and a
``flax.nnx.Metric`` adapter over the streaming evaluator in :mod:`.flax_metric` (imports flax).

Nothing here imports torch or detectron2; flax is imported only by :mod:`.flax_metric`.
"""
