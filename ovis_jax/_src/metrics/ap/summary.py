"""The result object, the summary numbers (metric step 12) and their text layout.

Computing is kept apart from printing: :func:`summarize` turns the precision / recall arrays into
named numbers, :func:`format_summary` and :func:`format_per_category` only lay them out.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import numpy as np

from ovis_jax._src.metrics.ap.curves import CurveLayout, Curves, LazyCurves
from ovis_jax._src.params import EvalParams

__all__ = [
    "OVIS_KEYS",
    "YTVIS_KEYS",
    "EvalResult",
    "format_groups",
    "format_length",
    "format_metrics",
    "format_per_category",
    "format_subsets",
    "format_summary",
    "result_from_arrays",
    "result_from_curves",
    "summarize",
    "summarize_curves",
    "summarize_length",
    "summary_slots",
]

#: (key, is AP, IoU threshold or None, area range, occlusion range, maxDet), in print order.
_SPECS: tuple[tuple[str, bool, float | None, str, str, int], ...] = (
    ("AP", True, None, "all", "all", 100),
    ("AP50", True, 0.5, "all", "all", 100),
    ("AP75", True, 0.75, "all", "all", 100),
    ("APs", True, None, "small", "all", 100),
    ("APm", True, None, "medium", "all", 100),
    ("APl", True, None, "large", "all", 100),
    ("APso", True, None, "all", "light", 100),
    ("APmo", True, None, "all", "medium", 100),
    ("APho", True, None, "all", "heavy", 100),
    ("AR1", False, None, "all", "all", 1),
    ("AR10", False, None, "all", "all", 10),
    ("AR100", False, None, "all", "all", 100),
    ("ARs", False, None, "small", "all", 100),
    ("ARm", False, None, "medium", "all", 100),
    ("ARl", False, None, "large", "all", 100),
    ("ARso", False, None, "all", "light", 100),
    ("ARmo", False, None, "all", "medium", 100),
    ("ARho", False, None, "all", "heavy", 100),
)
_OCC_KEYS = {"APso", "APmo", "APho", "ARso", "ARmo", "ARho"}
OVIS_KEYS: tuple[str, ...] = tuple(s[0] for s in _SPECS)
YTVIS_KEYS: tuple[str, ...] = tuple(k for k in OVIS_KEYS if k not in _OCC_KEYS)


def _mean_defined(x: np.ndarray) -> float:
    defined = x[x > -1]
    return float(np.mean(defined)) if defined.size else -1.0


def summary_slots(params: EvalParams, *, with_occlusion: bool) -> set[tuple[int, int, int]]:
    """The (area, occlusion, maxDet) slots that :func:`summarize` reads."""
    area_names = [a[0] for a in params.area_ranges]
    occ_names = [o[0] for o in params.occlusion_ranges]
    out = set()
    for key, _, _, area, occ, max_det in _SPECS:
        if key in _OCC_KEYS and not with_occlusion:
            continue
        if area in area_names and occ in occ_names and max_det in params.max_dets:
            m = list(params.max_dets).index(max_det)
            out.add((area_names.index(area), occ_names.index(occ), m))
    return out


def _summary(get, *, params: EvalParams, with_occlusion: bool) -> dict[str, float]:
    """The summary numbers from ``get(a, o, m)`` -> (float64[T, R, K] precision,
    float64[T, K] recall) of one slot."""
    area_names = [a[0] for a in params.area_ranges]
    occ_names = [o[0] for o in params.occlusion_ranges]
    stats: dict[str, float] = {}
    for key, is_ap, thr, area, occ, max_det in _SPECS:
        if key in _OCC_KEYS and not with_occlusion:
            continue
        if area not in area_names or occ not in occ_names or max_det not in params.max_dets:
            stats[key] = -1.0  # no such slice: the mean of nothing, as the official code says
            continue
        m = list(params.max_dets).index(max_det)
        s = get(area_names.index(area), occ_names.index(occ), m)[0 if is_ap else 1]
        if thr is not None:
            t = np.flatnonzero(params.iou_array == thr)  # exact, as the official code
            s = s[t]
        stats[key] = _mean_defined(s)
    return stats


def summarize(
    precision: np.ndarray, recall: np.ndarray, *, params: EvalParams, with_occlusion: bool
) -> dict[str, float]:
    """The official summary numbers.

    Args:
        precision: float64[T, R, K, A, O, M], -1 where undefined.
        recall: float64[T, K, A, O, M], -1 where undefined.
        params: the parameters the arrays were computed with.
        with_occlusion: whether O holds the occlusion ranges (OVIS) or only "all".

    Returns:
        ``{key: value}`` in the official order (18 keys for OVIS, 12 for YouTube-VIS); a
        value is the mean of the defined (> -1) entries of its slice, -1 if there are none
        (also when ``params`` has no such range or max-detection cut).
    """
    return _summary(
        lambda a, o, m: (precision[:, :, :, a, o, m], recall[:, :, a, o, m]),
        params=params,
        with_occlusion=with_occlusion,
    )


def summarize_curves(
    curves: Curves, *, params: EvalParams, with_occlusion: bool, rows: np.ndarray | None = None
) -> dict[str, float]:
    """:func:`summarize` of compact curves (the same float64 numbers).

    Args:
        curves: the accumulation, in a layout keeping :func:`summary_slots`.
        params, with_occlusion: as :func:`summarize`.
        rows: int64[K] the kept categories' rows to summarize (ascending), all by default.
    """

    def get(a, o, m):
        p, r = curves.slot(a, o, m)
        return (p, r) if rows is None else (p[:, :, rows], r[:, rows])

    return _summary(get, params=params, with_occlusion=with_occlusion)


def length_slots(num_ranges: int, num_max_dets: int) -> set[tuple[int, int, int]]:
    """The slots :func:`summarize_length` reads: every length range, "all", the largest
    maxDet."""
    return {(i, 0, num_max_dets - 1) for i in range(num_ranges)}


def _length_summary(get, ranges) -> dict[str, float]:
    ap = {f"AP_{name}": _mean_defined(get(i)[0]) for i, (name, _, _) in enumerate(ranges)}
    ar = {f"AR_{name}": _mean_defined(get(i)[1]) for i, (name, _, _) in enumerate(ranges)}
    return {**ap, **ar}


def summarize_length(
    precision: np.ndarray, recall: np.ndarray, *, ranges: tuple[tuple[str, float, float], ...]
) -> dict[str, float]:
    """AP (IoU 0.50:0.95) and AR at the largest maxDet per track-length range.

    Args:
        precision: float64[T, R, K, L, 1, M] of the length pass (L length ranges in place of
            the area ranges, occlusion "all" only).
        recall: float64[T, K, L, 1, M].
        ranges: the L named length ranges.

    Returns:
        ``{"AP_<name>": ..., then "AR_<name>": ...}``; -1 where no entry is defined.
    """
    return _length_summary(lambda i: (precision[:, :, :, i, 0, -1], recall[:, :, i, 0, -1]), ranges)


def _summarize_length_curves(curves: Curves, ranges, rows: np.ndarray | None = None):
    n_m = curves.layout.slots.shape[2]

    def get(i):
        p, r = curves.slot(i, 0, n_m - 1)
        return (p, r) if rows is None else (p[:, :, rows], r[:, rows])

    return _length_summary(get, ranges)


@dataclasses.dataclass(frozen=True, eq=False)
class EvalResult:
    """What an evaluation returns.

    Attributes:
        format: ``"ovis"`` or ``"ytvis"``.
        stats: the official numbers by name, in the official order.
        curves: the accumulation in the compact layout the summary, the per-category rows,
            the groups and the plots read (:class:`~ovis_jax._src.metrics.ap.curves.Curves`:
            the categories with ground truth, the slots of the summary numbers), or the full
            layout when the arrays were asked for.
        category_ids: int64[K].
        category_names: K names.
        params: the parameters used.
        warnings: what loading and evaluation noticed and did about it.
        backend: the backend that computed it (``"cpu"``, ``"jax"`` or ``"reference"``).
        timings: seconds spent in each stage, in order (loading included when
            :func:`~ovis_jax.evaluate` read the files).
        subsets: per video subset (``evaluate(..., subsets=)``), its own evaluation.
        groups: per category group (``evaluate(..., groups=)``, and LV-VIS ``base`` /
            ``novel``), the summary numbers restricted to its categories.
        group_categories: per group, int64[K'] its category ids.
        length_stats: AP and AR (maxDet 100) per track-length range (``"AP_short"``, ...,
            ``"AR_short"``, ...); empty where the length pass did not run.
        length_ranges: the L named, inclusive track-length ranges (frames).
        length_curves: the length pass's accumulation (compact or full), or None.
        matches: the per-result matching (:class:`~ovis_jax.Matches`) when asked for.
        metrics: per metric name (``evaluate(metrics=...)``, e.g. ``"errors"``), that metric's
            own result: the one place where analyses beside the AP hang off.
        metric_objects: per metric name, the metric object that computed it (renders its JSON
            entries and its text).
    """

    format: str
    stats: dict[str, float]
    curves: Curves
    category_ids: np.ndarray
    category_names: tuple[str, ...]
    params: EvalParams
    warnings: tuple[str, ...] = ()
    backend: str = ""
    timings: dict[str, float] = dataclasses.field(default_factory=dict)
    subsets: Mapping[str, EvalResult] = dataclasses.field(default_factory=dict)
    groups: Mapping[str, dict[str, float]] = dataclasses.field(default_factory=dict)
    group_categories: Mapping[str, np.ndarray] = dataclasses.field(default_factory=dict)

    @property
    def short_long_map(self) -> float | None:
        """YouTube-VIS 2022's ``mAP = (AP_short + AP_long) / 2`` when subsets named ``short``
        and ``long`` were evaluated, else None."""
        if "short" not in self.subsets or "long" not in self.subsets:
            return None
        return (self.subsets["short"].stats["AP"] + self.subsets["long"].stats["AP"]) / 2

    length_stats: dict[str, float] = dataclasses.field(default_factory=dict)
    length_ranges: tuple[tuple[str, float, float], ...] = ()
    length_curves: Curves | None = None
    matches: Any = None
    metrics: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    metric_objects: Mapping[str, Any] = dataclasses.field(default_factory=dict, repr=False)
    full_curves: LazyCurves | None = dataclasses.field(default=None, repr=False)
    length_full_curves: LazyCurves | None = dataclasses.field(default=None, repr=False)

    # The official arrays. Unless ``evaluate(..., arrays=True)`` asked for them, they are
    # computed on first read (the accumulation again, in the full layout: the same numbers),
    # and until then the result holds the inputs that accumulation needs.

    @property
    def precision(self) -> np.ndarray:
        """float64[T, R, K, A, O, M]; O is 1 ("all") for YouTube-VIS format."""
        return self._official(self.full_curves, self.curves)[0]

    @property
    def recall(self) -> np.ndarray:
        """float64[T, K, A, O, M]."""
        return self._official(self.full_curves, self.curves)[1]

    @property
    def scores(self) -> np.ndarray | None:
        """float64[T, R, K, A, O, M] the score of the result at which each precision entry is
        read (0 past the last result, -1 where undefined), as the official ``eval['scores']``;
        None where they were not computed."""
        return self._official(self.full_curves, self.curves)[2]

    @property
    def length_precision(self) -> np.ndarray | None:
        """float64[T, R, K, L, 1, M] of the length pass, or None."""
        if self.length_curves is None:
            return None
        return self._official(self.length_full_curves, self.length_curves)[0]

    @property
    def length_recall(self) -> np.ndarray | None:
        """float64[T, K, L, 1, M] of the length pass, or None."""
        if self.length_curves is None:
            return None
        return self._official(self.length_full_curves, self.length_curves)[1]

    @staticmethod
    def _official(lazy: LazyCurves | None, curves: Curves):
        if lazy is None:
            return curves.official()
        return lazy.get().official()

    @property
    def arrays_ready(self) -> bool:
        """Whether the official arrays are in memory (reading them costs nothing more)."""
        return self.full_curves is None or self.full_curves.ready

    def slot_curves(self, a: int, o: int, m: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """One (area, occlusion, maxDet) slot of the categories that can be defined:
        ``(int64[K] category indices, float64[T, R, K] precision, float64[T, K] recall)``;
        the other categories' entries are all -1."""
        p, r = self.curves.slot(a, o, m)
        return self.curves.layout.cats, p, r

    def category_stats(self, k: np.ndarray) -> dict[str, float]:
        """The summary numbers of categories ``k`` (int64[K] ascending indices): every
        number's formula restricted to them, as :func:`summarize` of the arrays' slices."""
        rows = self.curves.layout.rows()[np.asarray(k, dtype=np.int64)]
        return summarize_curves(
            self.curves,
            params=self.params,
            with_occlusion=self.format == "ovis",
            rows=rows[rows >= 0],
        )

    @property
    def errors(self) -> Any:
        """The error analysis (``metrics["errors"]``) when asked for, else None."""
        return self.metrics.get("errors")

    @property
    def per_category(self) -> list[dict[str, Any]]:
        """Per category: id, name, the official numbers of that category alone (the 18 or 12
        keys of ``stats``) and, when computed, its AP / AR per track-length range; -1 where
        undefined."""
        rows = []
        occ = self.format == "ovis"
        undefined = dict.fromkeys(OVIS_KEYS if occ else YTVIS_KEYS, -1.0)
        main_rows = self.curves.layout.rows()
        length = self.length_curves
        length_rows = length.layout.rows() if length is not None else None
        no_length = {}
        if length is not None:
            no_length = {f"{p}_{name}": -1.0 for p in ("AP", "AR") for name, *_ in
                         self.length_ranges}  # fmt: skip
        for k, (cid, name) in enumerate(zip(self.category_ids, self.category_names, strict=True)):
            row: dict[str, Any] = {"id": int(cid), "name": name}
            i = main_rows[k]
            if i < 0:  # no ground truth: every entry is -1
                row.update(undefined)
            else:
                one = np.array([i])
                row.update(
                    summarize_curves(self.curves, params=self.params, with_occlusion=occ, rows=one)
                )
            if length is not None:
                j = length_rows[k]
                if j < 0:
                    row.update(no_length)
                else:
                    row.update(_summarize_length_curves(length, self.length_ranges, np.array([j])))
            rows.append(row)
        return rows

    def to_json(self) -> dict[str, Any]:
        """The JSON document the CLI writes with ``--json``."""
        doc: dict[str, Any] = {
            "format": self.format,
            "stats": dict(self.stats),
            "length": dict(self.length_stats),
            "length_ranges": {name: [lo, hi] for name, lo, hi in self.length_ranges},
            "per_category": self.per_category,
            "warnings": list(self.warnings),
            "backend": self.backend,
        }
        if self.groups:
            doc["groups"] = self._groups_json()
        if self.subsets:
            doc["subsets"] = {
                name: {
                    "stats": dict(sub.stats),
                    **({"groups": sub._groups_json()} if sub.groups else {}),
                    **sub._metrics_json(),
                }
                for name, sub in self.subsets.items()
            }
        if self.short_long_map is not None:
            doc["ytvis2022_mAP"] = self.short_long_map
        doc.update(self._metrics_json())
        return doc

    def _metrics_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, value in self.metrics.items():
            out.update(self.metric_objects[name].json_entries(value))
        return out

    def _groups_json(self) -> dict[str, Any]:
        return {
            name: {
                "category_ids": self.group_categories[name].tolist(),
                "stats": dict(stats),
            }
            for name, stats in self.groups.items()
        }


def result_from_arrays(
    gt: Any,
    precision: np.ndarray,
    recall: np.ndarray,
    *,
    params: EvalParams,
    warnings: tuple[str, ...] = (),
    scores: np.ndarray | None = None,
    length: tuple[EvalParams, np.ndarray, np.ndarray] | None = None,
) -> EvalResult:
    """The :class:`EvalResult` of the official precision / recall arrays computed for ground
    truth ``gt`` (a :class:`~ovis_jax.GroundTruth`); ``warnings`` follow the ground truth's own.

    Args:
        precision: float64[T, R, K, A, O, M].
        recall: float64[T, K, A, O, M].
        scores: float64[T, R, K, A, O, M], the score at each precision entry, if computed.
        length: ``(length_params, precision, recall)`` of the track-length pass, if it ran.
    """
    curves = _full_curves(precision, recall, scores)
    length_part = None
    if length is not None:
        length_params, lp, lr = length
        length_part = (length_params, _full_curves(lp, lr, None), None)
    return result_from_curves(gt, curves, params=params, warnings=warnings, length=length_part)


def _full_curves(precision, recall, scores) -> Curves:
    n_t, n_r, n_k = precision.shape[:3]
    layout = CurveLayout.full(n_k, precision.shape[3:])
    n_s = layout.num_slots
    return Curves(
        layout,
        np.ascontiguousarray(precision).reshape(n_t, n_r, n_k, n_s),
        np.ascontiguousarray(recall).reshape(n_t, n_k, n_s),
        None if scores is None else np.ascontiguousarray(scores).reshape(n_t, n_r, n_k, n_s),
    )


def result_from_curves(
    gt: Any,
    curves: Curves,
    *,
    params: EvalParams,
    warnings: tuple[str, ...] = (),
    full: LazyCurves | None = None,
    length: tuple[EvalParams, Curves, LazyCurves | None] | None = None,
) -> EvalResult:
    """The :class:`EvalResult` of an accumulation in any layout keeping the summary's slots.

    Args:
        gt: the ground truth the curves were computed for.
        curves: the accumulation (:func:`summary_slots` kept).
        params: its parameters.
        warnings: the evaluation's warnings (after the ground truth's own).
        full: the full layout, computed now or on first use; None when ``curves`` is full.
        length: ``(length_params, curves, full)`` of the track-length pass, if it ran.
    """
    extra: dict[str, Any] = {}
    if length is not None:
        length_params, lc, lfull = length
        ranges = tuple(length_params.area_ranges)
        extra = {
            "length_ranges": ranges,
            "length_curves": lc,
            "length_full_curves": lfull,
            "length_stats": _summarize_length_curves(lc, ranges),
        }
    return EvalResult(
        format=gt.format,
        stats=summarize_curves(curves, params=params, with_occlusion=gt.has_occlusion),
        curves=curves,
        category_ids=gt.category_ids.copy(),
        category_names=gt.category_names,
        params=params,
        warnings=tuple(gt.warnings) + tuple(warnings),
        full_curves=full,
        **extra,
    )


_LABELS = {
    "AP": "Average Precision",
    "AR": "Average Recall",
}


def format_summary(result: EvalResult) -> str:
    """The summary in the official layout, one line per number."""
    lines = []
    params = result.params
    specs = {s[0]: s for s in _SPECS}
    t0, t1 = params.iou_thresholds[0], params.iou_thresholds[-1]
    for key, value in result.stats.items():
        _, is_ap, thr, area, occ, max_det = specs[key]
        title = _LABELS["AP" if is_ap else "AR"]
        short = "(AP)" if is_ap else "(AR)"
        iou = f"{t0:0.2f}:{t1:0.2f}" if thr is None else f"{thr:0.2f}"
        occ_part = f" | occlusion={occ:>6s}" if result.format == "ovis" else ""
        lines.append(
            f" {title:<18} {short} @[ IoU={iou:<9} | area={area:>6s}{occ_part} | "
            f"maxDets={max_det:>3d} ] = {value:0.3f}"
        )
    return "\n".join(lines)


def _length_label(lo: float, hi: float) -> str:
    if hi >= 1e10:
        return f">={lo:g}"
    return f"<={hi:g}" if lo <= 0 else f"{lo:g}-{hi:g}"


def format_length(result: EvalResult) -> str:
    """AP and AR (maxDet 100) per track-length range, one line each, in the summary's layout
    (empty when the length pass did not run)."""
    lines = []
    params = result.params
    iou = f"{params.iou_thresholds[0]:0.2f}:{params.iou_thresholds[-1]:0.2f}"
    max_det = params.max_dets[-1]
    for prefix, title in (("AP", "Average Precision"), ("AR", "Average Recall")):
        for name, lo, hi in result.length_ranges:
            value = result.length_stats[f"{prefix}_{name}"]
            frames = f"{name} ({_length_label(lo, hi)} frames)"
            lines.append(
                f" {title:<18} ({prefix}) @[ IoU={iou:<9} | length={frames:>26s} | "
                f"maxDets={max_det:>3d} ] = {value:0.3f}"
            )
    return "\n".join(lines)


def format_per_category(result: EvalResult) -> str:
    """A per-category table: id, name, AP, AP50, AP75, AR100 (``-`` where undefined)."""
    rows = result.per_category
    width = max([len("category")] + [len(r["name"]) for r in rows])

    def cell(v: float) -> str:
        return f"{v:6.3f}" if v > -1 else f"{'-':>6}"

    out = [f"{'id':>5}  {'category':<{width}}  {'AP':>6}  {'AP50':>6}  {'AP75':>6}  {'AR100':>6}"]
    for r in rows:
        out.append(
            f"{r['id']:>5}  {r['name']:<{width}}  {cell(r['AP'])}  {cell(r['AP50'])}  "
            f"{cell(r['AP75'])}  {cell(r['AR100'])}"
        )
    return "\n".join(out)


def format_groups(result: EvalResult) -> str:
    """A table of the category groups' numbers: a row per group, a column per number
    (``-`` where undefined); empty when there are no groups."""
    if not result.groups:
        return ""
    keys = list(result.stats)
    width = max(len("group"), *(len(n) for n in result.groups))
    out = [f"{'group':<{width}}  {'K':>5}  " + "  ".join(f"{k:>6}" for k in keys)]
    for name, stats in result.groups.items():
        cells = "  ".join(f"{v:6.3f}" if v > -1 else f"{'-':>6}" for v in stats.values())
        out.append(f"{name:<{width}}  {len(result.group_categories[name]):>5}  {cells}")
    return "\n".join(out)


def format_metrics(result: EvalResult) -> str:
    """The text blocks of the metrics beside the AP, in the order they were asked for."""
    blocks = [result.metric_objects[name].format_text(v) for name, v in result.metrics.items()]
    return "\n\n".join(b for b in blocks if b)


def format_subsets(result: EvalResult) -> str:
    """Each video subset's summary in the official layout, under a title line, and the
    YouTube-VIS 2022 mAP when subsets ``short`` and ``long`` were evaluated."""
    parts = []
    for name, sub in result.subsets.items():
        parts.append(f"subset {name!r}:")
        parts.append(format_summary(sub))
        if sub.groups:
            parts.append(format_groups(sub))
        parts.append("")
    if result.short_long_map is not None:
        parts.append(
            f"YouTube-VIS 2022 mAP = (AP_short + AP_long) / 2 = {result.short_long_map:0.3f}"
        )
    return "\n".join(parts).rstrip("\n")
