"""The official evaluator's parameters (``params`` / ``_paramsEval``) as one
:class:`~ovis_jax.EvalParams`: shared by the compat evaluators and the per-pair records."""

from __future__ import annotations

from typing import Any

from ovis_jax._src.params import EvalParams

__all__ = ["eval_params"]


def eval_params(pe: Any, rec_thrs: Any, *, ovis: bool) -> EvalParams:
    """The :class:`~ovis_jax.EvalParams` of official parameters ``pe`` (recall thresholds
    ``rec_thrs``, those of the accumulating ``params``).

    Raises:
        NotImplementedError: values the fast path does not take (a max-detection cut < 1).
    """
    occ = [[0, 1]] if not ovis else pe.occRng
    try:
        return EvalParams(
            iou_thresholds=tuple(float(t) for t in pe.iouThrs),
            recall_thresholds=tuple(float(r) for r in rec_thrs),
            area_ranges=tuple((f"area{i}", float(lo), float(hi)) for i, (lo, hi) in
                              enumerate(pe.areaRng)),
            occlusion_ranges=tuple((f"occ{i}", float(lo), float(hi)) for i, (lo, hi) in
                                   enumerate(occ)),
            max_dets=tuple(int(m) for m in pe.maxDets),
        )  # fmt: skip
    except ValueError as e:
        raise NotImplementedError(f"these params are out of reach of ovis_jax: {e}") from None
