"""A ``flax.nnx.Metric`` over the streaming evaluator: ``reset`` / ``update`` / ``compute``.

Importing this module imports flax (the optional extra ``ovis_jax[flax]``) and JAX::

    metric = VideoAPMetric(gt, max_predictions=20)
    for video_ids, masks, scores, labels, valid in batches:
        metric.update(video_ids=video_ids, masks=masks, scores=scores, labels=labels, valid=valid)
    result = metric.compute()  # an EvalResult, == ovis_jax.evaluate(gt, the same predictions)
    metric.reset()

The arguments of ``update`` are those of :meth:`~ovis_jax.StreamingEvaluator.update` (B videos
of a batch, N predictions each, masks [B, N, F, H, W]), by keyword as ``nnx.MultiMetric`` passes
them (extra keywords are ignored, as nnx metrics do) or by position. The accumulated
:class:`~ovis_jax.StreamingState` is the metric's one ``nnx.metrics.MetricState`` variable
(``metric.state``), so ``nnx.split`` / ``nnx.state`` see it and orbax checkpoints it; a state
restored into the metric is checked against the ground truth at the next ``update`` /
``compute``.
"""

from __future__ import annotations

from typing import Any

from flax import nnx

from ovis_jax._src.io.model import GroundTruth
from ovis_jax._src.io.vis import load_ground_truth
from ovis_jax._src.metrics.ap.summary import EvalResult
from ovis_jax._src.params import EvalParams
from ovis_jax._src.streaming.evaluator import StreamingEvaluator

__all__ = ["VideoAPMetric"]


class VideoAPMetric(nnx.Metric):
    """The official OVIS / YouTube-VIS video mask AP as an ``nnx.Metric``.

    Args:
        gt: the ground truth: a :class:`~ovis_jax.GroundTruth`, a path or a parsed dict.
        max_predictions: N, the most predictions per video.
        params: evaluation parameters; the official ones by default.
        pad_video_id: the video id that marks a padding row of a batch.
        evaluator: an existing :class:`~ovis_jax.StreamingEvaluator` to use instead (then the
            other arguments are ignored; its compilations are shared).
    """

    def __init__(
        self,
        gt: Any = None,
        *,
        max_predictions: int = 100,
        params: EvalParams | None = None,
        pad_video_id: int = -1,
        evaluator: StreamingEvaluator | None = None,
    ) -> None:
        if evaluator is None:
            if gt is None:
                raise ValueError("give the ground truth (gt) or a StreamingEvaluator (evaluator)")
            gt = gt if isinstance(gt, GroundTruth) else load_ground_truth(gt)
            evaluator = StreamingEvaluator(
                gt, max_predictions=max_predictions, params=params, pad_video_id=pad_video_id
            )
        self._evaluator = nnx.static(evaluator) if hasattr(nnx, "static") else evaluator
        self.state = nnx.metrics.MetricState(evaluator.init())

    @property
    def evaluator(self) -> StreamingEvaluator:
        """The :class:`~ovis_jax.StreamingEvaluator` doing the work."""
        return self._evaluator

    def reset(self) -> None:
        """Forgets every update (an empty state)."""
        _set(self.state, self._evaluator.init())

    def update(
        self,
        video_ids: Any = None,
        masks: Any = None,
        scores: Any = None,
        labels: Any = None,
        valid: Any = None,
        **_: Any,
    ) -> None:
        """Adds a batch of videos: :meth:`ovis_jax.StreamingEvaluator.update`'s arguments.

        Raises:
            TypeError: ``video_ids``, ``masks``, ``scores`` or ``labels`` missing.
            ValueError: what :meth:`~ovis_jax.StreamingEvaluator.update` refuses.
        """
        args = {"video_ids": video_ids, "masks": masks, "scores": scores, "labels": labels}
        missing = [k for k, v in args.items() if v is None]
        if missing:
            raise TypeError(f"VideoAPMetric.update needs {', '.join(missing)}")
        new = self._evaluator.update(_get(self.state), video_ids, masks, scores, labels, valid)
        _set(self.state, new)

    def compute(self) -> EvalResult:
        """The :class:`~ovis_jax.EvalResult` of every update since the last reset."""
        return self._evaluator.compute(_get(self.state))


def _get(variable: nnx.Variable) -> Any:
    """A variable's value (``get_value`` where flax has it, ``.value`` before 0.12)."""
    return variable.get_value() if hasattr(variable, "get_value") else variable.value


def _set(variable: nnx.Variable, value: Any) -> None:
    """Sets a variable's value (``set_value`` where flax has it, ``.value`` before 0.12)."""
    if hasattr(variable, "set_value"):
        variable.set_value(value)
    else:
        variable.value = value
