"""``YTVOSeval`` / ``OVISeval``: the official evaluator classes as a facade over
:func:`ovis_jax.evaluate`.

The evaluator keeps the official surface (``params``, ``evaluate()``, ``accumulate(p=None)``,
``summarize()``, ``eval``, ``stats``, ``evalImgs``, ``ious``) and hands the work to the fast
path. The official ``params`` are honoured by transforming the inputs, never by a second
implementation of the metric:

* ``vidIds``: the ground truth and the results are restricted to those videos
  (``restrict_ground_truth`` of ``metrics.ap.subsets``); ids that are not videos of the
  ground truth contribute nothing, as in the official code.
* ``catIds`` (``useCats=1``): categories are independent, so the official ``K`` axis is the
  fast path's columns for ``catIds`` in order (-1 for an id that is not a category of the
  ground truth, where the official has no ground truth either).
* ``useCats=0``: the official pools, per video, the ground truths and results of the
  categories in ``catIds`` (in that order, each in file order) and matches them regardless of
  category. Here every such track is relabelled to one category (-1) and the tracks are put
  in that order, so that the fast path's tie rules (ground truths in file order, results
  stably by score) meet the official's exactly.
* ``iouThrs``, ``recThrs``, ``maxDets``, ``areaRng``, OVIS ``occRng``: passed as
  :class:`~ovis_jax.EvalParams`.
* ``accumulate(p)``: the official picks the entries of ``p`` found in the evaluated
  parameters and reads the per-video records by *position*; the same positions are read
  here. Where the official would read records of another category / range / video than the
  one named (positions past the evaluated ones), or ``p`` has fewer IoU thresholds than were
  evaluated, :class:`NotImplementedError` is raised rather than a different number.

``iouType="bbox"`` and ``"keypoints"`` raise :class:`NotImplementedError` in ``evaluate()``
(the official ``ytvoseval`` accepts ``"bbox"`` but cannot run it). Only ``summarize()``
prints (the official lines, character for character); progress goes to the ``ovis_jax``
logger.
"""

from __future__ import annotations

import copy
import dataclasses
import datetime
import logging
import time
from collections import defaultdict
from typing import Any

import numpy as np

from ovis_jax._src.compat.datasets import VisDataset
from ovis_jax._src.compat.params import eval_params
from ovis_jax._src.compat.summary_text import summary_lines
from ovis_jax._src.evaluation import BACKENDS, evaluate
from ovis_jax._src.io.model import GroundTruth, Results
from ovis_jax._src.io.vis import fingerprint as gt_fingerprint
from ovis_jax._src.metrics.ap.subsets import restrict_ground_truth, restrict_results, take_tracks
from ovis_jax._src.metrics.ap.summary import EvalResult
from ovis_jax._src.params import EvalParams

__all__ = ["OVISParams", "OVISeval", "Params", "VisEval", "YTVOSeval"]

logger = logging.getLogger(__name__)

#: The category id of the pooled category (``useCats=0``), as the official records name it.
POOLED = -1


class Params:
    """The official evaluation parameters (defaults as in ``ytvoseval.Params``).

    Attributes:
        vidIds: videos to evaluate (all videos of the ground truth by default).
        catIds: categories to evaluate (all categories by default).
        iouThrs: float64[T] IoU thresholds, 0.50:0.05:0.95.
        recThrs: float64[R] recall thresholds, 0:0.01:1.
        maxDets: M max-detection cuts, ``[1, 10, 100]``.
        areaRng: A ``[lo, hi]`` area ranges (inclusive); ``areaRngLbl`` their labels.
        useCats: 1 (per category) or 0 (class-agnostic).
        iouType: ``"segm"`` (the only one evaluated here).
        useSegm: deprecated; when not None, 1 means ``"segm"``, else ``"bbox"``.
    """

    def __init__(self, iouType: str = "segm") -> None:
        if iouType in ("segm", "bbox"):
            self.setDetParams()
        elif iouType == "keypoints":
            self.setKpParams()
        else:
            raise ValueError(f"iouType {iouType!r} not supported (expected 'segm')")
        self.iouType = iouType
        self.useSegm = None

    def _common(self) -> None:
        defaults = EvalParams()
        self.vidIds: list = []
        self.catIds: list = []
        self.iouThrs = defaults.iou_array
        self.recThrs = defaults.recall_array
        self.useCats = 1

    def setDetParams(self) -> None:
        """The mask / box parameters (the defaults)."""
        self._common()
        self.maxDets = [1, 10, 100]
        self.areaRng = [[0, 1e10], [0, 128**2], [128**2, 256**2], [256**2, 1e10]]
        self.areaRngLbl = ["all", "small", "medium", "large"]

    def setKpParams(self) -> None:
        """The keypoint parameters (kept for completeness; keypoints are not evaluated)."""
        self._common()
        self.maxDets = [20]
        self.areaRng = [[0, 1e10], [32**2, 96**2], [96**2, 1e10]]
        self.areaRngLbl = ["all", "medium", "large"]


class OVISParams(Params):
    """The OVIS parameters: :class:`Params` plus the occlusion ranges ``occRng`` (O
    ``[lo, hi]``, inclusive) and their labels ``occRngLbl``."""

    def setDetParams(self) -> None:
        super().setDetParams()
        self.occRng = [[0, 1], [0, 0.25], [0.25, 0.5], [0.5, 1]]
        self.occRngLbl = ["all", "light", "medium", "heavy"]


@dataclasses.dataclass(frozen=True)
class _Inputs:
    """What the fast path evaluates for one ``evaluate()`` call.

    Attributes:
        gt, results: the ground truth and results, transformed for ``useCats=0`` (one category,
            :data:`POOLED`) and with the evaluator's format.
        video_ids: int64[V] the evaluated videos (``vidIds`` that are videos of the ground
            truth), ascending.
        eval_cats: the official category list of the records: ``catIds``, or ``[-1]``.
    """

    gt: GroundTruth
    results: Results
    video_ids: np.ndarray
    eval_cats: list


def _pooled(gt: GroundTruth, results: Results, cat_ids: list) -> tuple[GroundTruth, Results]:
    """The class-agnostic inputs of ``useCats=0``: the tracks of ``cat_ids`` (in that order,
    each category's in file order, a repeated id repeated), all relabelled :data:`POOLED`."""
    cats = [int(c) for c in cat_ids]
    foreign = sorted(set(cats) - set(gt.category_ids.tolist()))
    unknown = results.unknown
    if foreign and unknown is not None and np.isin(unknown.category_id, foreign).any():
        raise NotImplementedError(
            f"useCats=0 with catIds {foreign} that are not categories of the ground truth but "
            "have results: those results are not loaded by ovis_jax"
        )
    empty = np.zeros(0, dtype=np.int64)
    g_keep = np.concatenate([np.flatnonzero(gt.category_id == c) for c in cats] or [empty])
    d_keep = np.concatenate([np.flatnonzero(results.category_id == c) for c in cats] or [empty])
    ann_ids = gt.ann_id[g_keep].tolist()
    pooled_gt = take_tracks(
        gt,
        g_keep,
        ("ann_id", "video_id", "iscrowd", "avg_area", "occ_score"),
        category_id=np.full(g_keep.shape[0], POOLED, dtype=np.int64),
        category_ids=np.asarray([POOLED], dtype=np.int64),
        category_names=("all",),
        category_partition=np.full(1, -1, dtype=np.int64),
        fingerprint=gt_fingerprint(gt.videos, np.asarray([POOLED]), ann_ids, gt.format),
    )
    pooled_res = take_tracks(
        results,
        d_keep,
        ("result_id", "video_id", "score", "avg_area"),
        category_id=np.full(d_keep.shape[0], POOLED, dtype=np.int64),
        num_unknown_category=0,
    )
    return pooled_gt, pooled_res


def prepare_inputs(gt: GroundTruth, results: Results, pe: Any, *, ovis: bool) -> _Inputs:
    """The fast path's inputs for the evaluated parameters ``pe`` (see the module docstring)."""
    fmt = "ovis" if ovis else "ytvis"
    if gt.format != fmt:
        gt = dataclasses.replace(gt, format=fmt)
    known = {v.id for v in gt.videos}
    video_ids = np.asarray(sorted({int(v) for v in pe.vidIds} & known), dtype=np.int64)
    if pe.useCats:
        eval_cats = list(pe.catIds)
    else:
        gt, results = _pooled(gt, results, list(pe.catIds))
        eval_cats = [POOLED]
    return _Inputs(gt=gt, results=results, video_ids=video_ids, eval_cats=eval_cats)


def _positions(p: Any, pe: Any, eval_cats: list, ovis: bool) -> dict[str, list]:
    """The official ``k_list``, ``a_list``, ``o_list``, ``m_list`` (values) and ``i_list`` of
    ``accumulate(p)`` against the evaluated parameters ``pe``."""
    set_a = set(map(tuple, pe.areaRng))
    out = {
        "k": [n for n, k in enumerate(p.catIds) if k in set(eval_cats)],
        "a": [n for n, a in enumerate(map(tuple, p.areaRng)) if a in set_a],
        "o": [0],
        "m": [m for m in p.maxDets if m in set(pe.maxDets)],
        "i": [n for n, v in enumerate(p.vidIds) if v in set(pe.vidIds)],
    }
    if ovis:
        set_o = set(map(tuple, pe.occRng))
        out["o"] = [n for n, o in enumerate(map(tuple, p.occRng)) if o in set_o]
    sizes = {"k": len(eval_cats), "a": len(pe.areaRng), "i": len(pe.vidIds)}
    sizes["o"] = len(pe.occRng) if ovis else 1
    for axis, size in sizes.items():
        if any(n >= size for n in out[axis]):
            raise NotImplementedError(
                "accumulate(p): p's catIds / areaRng / occRng / vidIds place an evaluated entry "
                "past the evaluated ones; the official code would read the records of another "
                "entry there"
            )
    if len(p.iouThrs) < len(pe.iouThrs):
        raise NotImplementedError(
            "accumulate(p): p has fewer IoU thresholds than were evaluated (the official code "
            "raises IndexError)"
        )
    return out


class VisEval:
    """The official evaluator (``YTVOSeval`` / ``OVISeval``) over the fast path.

    Args:
        cocoGt: the ground truth (:class:`~ovis_jax.compat.YTVOS` / ``OVIS``).
        cocoDt: the results (``cocoGt.loadRes(...)``).
        iouType: ``"segm"`` (default). ``"bbox"`` / ``"keypoints"`` are accepted here, as
            the official accepts them, and raise :class:`NotImplementedError` in
            :meth:`evaluate`.
        backend: the :func:`ovis_jax.evaluate` backend that does the work: ``"auto"``
            (default), ``"cpu"``, ``"jax"`` or ``"reference"``; all give the same numbers.

    Attributes:
        params: the parameters (:class:`Params`, :class:`OVISParams`); change them before
            :meth:`evaluate` as with the official class.
        eval: after :meth:`accumulate`, ``params``, ``counts``, ``date``, ``precision``
            (float64[T, R, K, A, M], OVIS [T, R, K, A, O, M]), ``recall`` ([T, K, A, M], OVIS
            [T, K, A, O, M]) and ``scores`` (as precision).
        stats: after :meth:`summarize`, float64[12] (OVIS [18]), the official numbers.
    """

    _ovis = False
    _params_class: type[Params] = Params

    def __init__(self, cocoGt=None, cocoDt=None, iouType="segm", *, backend: str = "auto"):
        if backend != "auto" and backend not in BACKENDS:
            raise ValueError(f"unknown backend {backend!r}, expected 'auto' or one of {BACKENDS}")
        if not iouType:
            iouType = "segm"
        self.cocoGt: VisDataset | None = cocoGt
        self.cocoDt: VisDataset | None = cocoDt
        self.backend = backend
        self.evalVids: defaultdict = defaultdict(list)
        self.eval: dict = {}
        self.params = self._params_class(iouType=iouType)
        self._paramsEval: Any = {}
        self.stats: Any = []
        self._inputs: _Inputs | None = None
        self._runs: dict[tuple, EvalResult | None] = {}
        self._lazy: dict[str, Any] = {}
        if cocoGt is not None:
            self.params.vidIds = sorted(cocoGt.getVidIds())
            self.params.catIds = sorted(cocoGt.getCatIds())

    # ----------------------------------------------------------------------------------------

    def evaluate(self) -> None:
        """Matches results to ground truth for the current ``params`` (normalised as the
        official normalises them: ``vidIds`` and, with ``useCats``, ``catIds`` made unique and
        sorted, ``maxDets`` sorted). The fast path runs here.

        Raises:
            NotImplementedError: ``iouType`` other than ``"segm"``, or params out of reach.
            FormatError: a malformed ground truth or results (the loader's message).
        """
        tic = time.perf_counter()
        p = self.params
        if p.useSegm is not None:
            p.iouType = "segm" if p.useSegm == 1 else "bbox"
        if p.iouType != "segm":
            raise NotImplementedError(
                f"iouType={p.iouType!r} is not supported: ovis_jax evaluates masks only "
                "(iouType='segm'); the official ytvoseval accepts 'bbox' but fails on it"
            )
        p.vidIds = list(np.unique(p.vidIds))
        if p.useCats:
            p.catIds = list(np.unique(p.catIds))
        p.maxDets = sorted(p.maxDets)
        self.params = p
        self.eval, self._runs, self._lazy = {}, {}, {}
        gt = self.cocoGt.ground_truth()
        results = self.cocoDt.results_for(gt)
        self._paramsEval = copy.deepcopy(p)
        self._inputs = prepare_inputs(gt, results, self._paramsEval, ovis=self._ovis)
        self._result(self._inputs.video_ids.tolist(), self._paramsEval.recThrs)
        logger.info("evaluate: %.2fs", time.perf_counter() - tic)

    def _result(self, video_ids: list, rec_thrs: Any) -> EvalResult | None:
        """The fast path's evaluation of some evaluated videos (None if there are none)."""
        inputs = self._inputs
        key = (tuple(video_ids), tuple(float(r) for r in rec_thrs))
        if key in self._runs:
            return self._runs[key]
        out = None
        if video_ids:
            gt, results = inputs.gt, inputs.results
            if len(video_ids) < len(gt.videos):
                ids = np.asarray(video_ids, dtype=np.int64)
                gt, results = restrict_ground_truth(gt, ids), restrict_results(results, ids)
            params = eval_params(self._paramsEval, rec_thrs, ovis=self._ovis)
            out = evaluate(
                gt, results, backend=self.backend, params=params, lengths=False, arrays=True
            )
        self._runs[key] = out
        return out

    def accumulate(self, p: Any = None) -> None:
        """Fills ``eval`` (precision, recall, scores in the official shapes) for ``p`` (the
        current ``params`` by default), as the official reads the evaluated records: see the
        module docstring. With ``useCats=0``, ``p.catIds`` becomes ``[-1]`` (as the official).

        Raises:
            RuntimeError: :meth:`evaluate` has not run.
            NotImplementedError: ``p`` asks for what the official reads at wrong positions.
        """
        tic = time.perf_counter()
        if not self._paramsEval:
            raise RuntimeError("Please run evaluate() first")
        if p is None:
            p = self.params
        p.catIds = p.catIds if p.useCats == 1 else [-1]
        pe, inputs, ovis = self._paramsEval, self._inputs, self._ovis
        pos = _positions(p, pe, inputs.eval_cats, ovis)
        n_o = len(p.occRng) if ovis else 1
        k = len(p.catIds) if p.useCats else 1
        shape = (len(p.iouThrs), len(p.recThrs), k, len(p.areaRng), n_o, len(p.maxDets))
        precision, scores = -np.ones(shape), -np.ones(shape)
        recall = -np.ones(shape[:1] + shape[2:])
        known = set(inputs.video_ids.tolist())
        videos = [int(pe.vidIds[i]) for i in pos["i"] if int(pe.vidIds[i]) in known]
        result = self._result(videos, p.recThrs)
        if result is not None:
            _fill(result, (precision, recall, scores), pos, pe, inputs.eval_cats)
        if not ovis:
            precision, recall, scores = precision[..., 0, :], recall[..., 0, :], scores[..., 0, :]
        counts = list(precision.shape)
        self.eval = {
            "params": p,
            "counts": counts,
            "date": datetime.datetime.now().strftime("%Y-%m-%d %H:%M:%S"),
            "precision": precision,
            "recall": recall,
            "scores": scores,
        }
        logger.info("accumulate: %.2fs", time.perf_counter() - tic)

    def summarize(self) -> None:
        """Prints the official summary lines and sets ``stats`` (float64[12], OVIS [18]).

        Raises:
            RuntimeError: :meth:`accumulate` has not run.
        """
        if not self.eval:
            raise RuntimeError("Please run accumulate() first")
        if self.params.iouType not in ("segm", "bbox"):
            raise NotImplementedError(f"iouType={self.params.iouType!r} is not supported")
        stats = np.zeros((18 if self._ovis else 12,))
        for i, (value, line) in enumerate(summary_lines(self.eval, self.params, ovis=self._ovis)):
            print(line)
            stats[i] = value
        self.stats = stats

    # ----------------------------------------------------------------------------------------
    # Per-video records, computed on first access

    @property
    def evalImgs(self) -> list:
        """The official per-video records (``evaluate()``'s ``evalImgs``): one per category ×
        area range (× occlusion range) × video of the evaluated params, None where the video
        has neither ground truth nor results of the category; else a dict with ``video_id``,
        ``category_id``, ``aRng`` (no occlusion range, as the official), ``maxDet``,
        ``dtIds``, ``gtIds``, ``dtMatches`` [T, D], ``gtMatches`` [T, G], ``dtScores``,
        ``gtIgnore`` [G], ``dtIgnore`` [T, D].
        Computed on first access with the reference backend's per-pair matching."""
        if "evalImgs" not in self._lazy:
            from ovis_jax._src.compat.records import eval_records

            if not self._paramsEval:
                return []
            self._lazy["evalImgs"] = eval_records(self, self.ious)
        return self._lazy["evalImgs"]

    @property
    def ious(self) -> dict:
        """``{(video id, category id): float64[D, G]}`` track IoUs of the evaluated videos
        and categories (results by score, the first ``maxDets[-1]``; ground truths in file
        order), ``[]`` where neither exists. Computed on first access (reference backend)."""
        if "ious" not in self._lazy:
            from ovis_jax._src.compat.records import pair_ious

            if not self._paramsEval:
                return {}
            self._lazy["ious"] = pair_ious(self)
        return self._lazy["ious"]


def _fill(result: EvalResult, out: tuple, pos: dict, pe: Any, eval_cats: list) -> None:
    """Copies the fast path's arrays into the official ones at the positions ``pos``."""
    precision, recall, scores = out
    ks, src_k = [], []
    for k, k0 in enumerate(pos["k"]):
        cat = eval_cats[k0]
        hit = np.flatnonzero(result.category_ids == cat)
        if hit.size:
            ks.append(k)
            src_k.append(int(hit[0]))
    m_cols = [list(pe.maxDets).index(m) for m in pos["m"]]
    n_t = len(pe.iouThrs)
    t, r = np.arange(n_t), np.arange(precision.shape[1])
    a, o, m = np.arange(len(pos["a"])), np.arange(len(pos["o"])), np.arange(len(m_cols))
    dest = np.ix_(t, r, ks, a, o, m)
    src = np.ix_(t, r, src_k, pos["a"], pos["o"], m_cols)
    precision[dest] = result.precision[src]
    scores[dest] = result.scores[src]
    recall[np.ix_(t, ks, a, o, m)] = result.recall[np.ix_(t, src_k, pos["a"], pos["o"], m_cols)]


class YTVOSeval(VisEval):
    """The YouTube-VIS evaluator (``pycocotools.ytvoseval.YTVOSeval``); see :class:`VisEval`."""


class OVISeval(VisEval):
    """The OVIS evaluator (``pycocotools.oviseval.OVISeval``); see :class:`VisEval`.

    ``params`` also has ``occRng`` / ``occRngLbl``; the arrays have the occlusion axis O.
    A ground truth without occlusion labels (where the official raises ``KeyError``) is
    evaluated with every track's occlusion score 0.
    """

    _ovis = True
    _params_class = OVISParams
