"""``tracking_metrics``: HOTA, CLEAR and Identity on OVIS / YouTube-VIS files, as TrackEval.

Numbers are fractions (like the AP lines; TrackEval prints them x100); counts are integers.
HOTA keys in the averages are the mean over the 19 alphas, as TrackEval's summary prints them
(for the counts ``HOTA_TP`` / ``HOTA_FN`` / ``HOTA_FP`` that mean is TrackEval's ``___AUC``
column); the arrays over the alphas are in ``per_alpha``.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ovis_jax._src.io.model import GroundTruth, Results
from ovis_jax._src.metrics.tracking import clear, hota, identity
from ovis_jax._src.metrics.tracking.frames import build_sequences, kept_results

__all__ = ["FAMILIES", "TrackingMetric", "TrackingResult", "tracking_metrics"]

logger = logging.getLogger(__name__)

FAMILIES = {"hota": hota, "clear": clear, "identity": identity}
#: The keys of each family in the outputs (TrackEval's fields; CLEAR's extra fields included).
KEYS = {"hota": hota.FIELDS, "clear": clear.FIELDS, "identity": identity.FIELDS}
_HOTA_ARRAYS = hota.FLOAT_ARRAY_FIELDS + hota.INTEGER_ARRAY_FIELDS
_AVERAGES = ("class_average", "detection_average", "class_average_present")


@dataclasses.dataclass(frozen=True)
class TrackingResult:
    """The tracking metrics of a ground truth and results (fractions; counts as integers).

    Attributes:
        families: the metric families computed (of ``hota``, ``clear``, ``identity``).
        class_average: TrackEval's ``cls_comb_cls_av``: every key, the mean over *every*
            category of the ground truth (counts summed).
        detection_average: TrackEval's ``cls_comb_det_av``: every key from the counts summed
            over categories.
        class_average_present: ours: as ``class_average`` over the categories with at least
            one ground-truth detection in the evaluated videos (NaN entries if none).
        per_alpha: for each of the three averages, the HOTA keys as float64[T] over the
            T = 19 alphas; ``"per_category"``: each as float64[K, T].
        per_category: per category ``{"id", "name", every key}``, ground-truth order.
        alphas: float64[T] the alpha thresholds.
        score_threshold: the threshold results were filtered with (None: all results).
        num_results: the results evaluated.
        groups: per category group (``evaluate(groups=...)``, LV-VIS base / novel),
            ``{"class_average": {...}, "detection_average": {...}}`` over its categories.
    """

    families: tuple[str, ...]
    class_average: dict[str, float]
    detection_average: dict[str, float]
    class_average_present: dict[str, float]
    per_alpha: dict[str, dict[str, np.ndarray]]
    per_category: list[dict[str, Any]]
    alphas: np.ndarray
    score_threshold: float | None
    num_results: int
    groups: dict[str, dict[str, dict[str, float]]] = dataclasses.field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The JSON layout: the three averages (each with its ``"per_alpha"`` lists) and
        ``"per_category"``."""
        out: dict[str, Any] = {}
        for name in _AVERAGES:
            block = {k: _plain(v) for k, v in getattr(self, name).items()}
            if self.per_alpha.get(name):
                block["per_alpha"] = {k: _plain(v) for k, v in self.per_alpha[name].items()}
            out[name] = block
        out["per_category"] = [{k: _plain(v) for k, v in c.items()} for c in self.per_category]
        if self.groups:
            out["groups"] = {
                g: {a: {k: _plain(v) for k, v in row.items()} for a, row in blocks.items()}
                for g, blocks in self.groups.items()
            }
        out["alphas"] = _plain(self.alphas)
        out["score_threshold"] = self.score_threshold
        return out

    def format_text(self) -> str:
        """One table per family: a row per average, the main keys as columns."""
        lines: list[str] = []
        for fam in self.families:
            keys = _MAIN_KEYS[fam]
            lines.append(f"{fam.upper()} (fractions; TrackEval prints x100)")
            lines.append(f"{'':<24}" + "".join(f"{k:>10}" for k in keys))
            for name in _AVERAGES:
                row = getattr(self, name)
                lines.append(f"{name:<24}" + "".join(_cell(row[k]) for k in keys))
            lines.append("")
        return "\n".join(lines).rstrip() + "\n"


_MAIN_KEYS = {
    "hota": ("HOTA", "DetA", "AssA", "DetRe", "DetPr", "AssRe", "AssPr", "LocA", "OWTA"),
    "clear": ("MOTA", "MOTP", "MODA", "CLR_Re", "CLR_Pr", "MTR", "PTR", "MLR", "sMOTA",
              "CLR_TP", "CLR_FN", "CLR_FP", "IDSW", "MT", "PT", "ML", "Frag"),
    "identity": ("IDF1", "IDR", "IDP", "IDTP", "IDFN", "IDFP"),
}  # fmt: skip


def _cell(v) -> str:
    if isinstance(v, int):
        return f"{v:>10d}"
    return f"{v:>10.4f}"


def _per_alpha(v) -> np.ndarray:
    return np.broadcast_to(np.asarray(v, dtype=np.float64), hota.ALPHAS.shape).copy()


def _plain(v):
    """A JSON value: floats, ints, lists (NaN as None)."""
    if isinstance(v, np.ndarray) and v.ndim == 0:
        return _plain(v.item())
    if isinstance(v, np.ndarray):
        return [_plain(x) for x in v.tolist()]
    if isinstance(v, list):
        return [_plain(x) for x in v]
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    if isinstance(v, (int, np.integer)):
        return int(v)
    if isinstance(v, (float, np.floating)):
        return None if np.isnan(v) else float(v)
    return v


def _summary(fam: str, res: Mapping) -> dict[str, Any]:
    """Scalar keys: HOTA arrays as their mean over the alphas; integer fields as int."""
    out: dict[str, Any] = {}
    for k in KEYS[fam]:
        v = res[k]
        if fam == "hota" and k in _HOTA_ARRAYS:
            out[k] = float(np.mean(v))
        elif k in getattr(FAMILIES[fam], "INTEGER_FIELDS", ()):
            out[k] = int(v) if np.isfinite(v) else v
        else:
            out[k] = float(v)
    return out


def _category_results(fam: str, sequences) -> list[dict]:
    """Per category, TrackEval's ``combine_sequences`` over its sequences."""
    mod = FAMILIES[fam]
    out = []
    for seqs in sequences.by_category:
        if seqs:
            per_seq = [mod.eval_sequence(s) for s in seqs]
        else:  # every sequence empty: combining empties is combining one
            per_seq = [mod.eval_sequence(_EMPTY)]
        out.append(mod.combine_sequences(per_seq))
    return out


def _empty_sequence():
    from ovis_jax._src.metrics.tracking.base import SequenceData

    z = np.zeros(0, dtype=np.int64)
    return SequenceData(1, 0, 0, z, z, z, z, z, z, z, np.zeros(0))


_EMPTY = _empty_sequence()


def tracking_metrics(
    gt: GroundTruth,
    results: Results,
    *,
    backend: str = "cpu",
    score_threshold: float | None = None,
    families: Sequence[str] = ("hota", "clear", "identity"),
    groups: Mapping[str, np.ndarray] | None = None,
) -> TrackingResult:
    """HOTA, CLEAR and Identity as TrackEval 1.3.0 computes them for YouTube-VIS.

    Args:
        gt: the loaded ground truth.
        results: the loaded results (every result is a tracker track).
        backend: ``"cpu"`` (our compiled mask path) or ``"reference"`` (pycocotools) for the
            per-frame IoUs; the metrics themselves are the same code.
        score_threshold: if given, results with a score below it are dropped first (TrackEval
            has no such option; its numbers are those of ``None``).
        families: which of ``"hota"``, ``"clear"``, ``"identity"`` to compute.
        groups: per group name, the category ids whose class / detection averages are also
            reported (``TrackingResult.groups``).

    Returns:
        A :class:`TrackingResult`.
    """
    families = tuple(families)
    unknown = [f for f in families if f not in FAMILIES]
    if unknown:
        raise ValueError(f"unknown tracking metric families {unknown}; expected {list(FAMILIES)}")
    kept = kept_results(results, score_threshold)
    seqs = build_sequences(gt, results, backend=backend, kept=kept)
    present = np.flatnonzero(seqs.gt_dets > 0)
    averages = {name: {} for name in _AVERAGES}
    per_alpha: dict[str, dict[str, np.ndarray]] = {name: {} for name in _AVERAGES}
    per_cat = [
        {"id": int(i), "name": n} for i, n in zip(gt.category_ids, gt.category_names, strict=True)
    ]
    group_pos = {
        name: np.flatnonzero(np.isin(gt.category_ids, ids)) for name, ids in (groups or {}).items()
    }
    group_rows: dict[str, dict[str, dict[str, float]]] = {
        name: {"class_average": {}, "detection_average": {}} for name in group_pos
    }
    for fam in families:
        mod = FAMILIES[fam]
        cats = _category_results(fam, seqs)
        for name, pos in group_pos.items():
            sel = [cats[i] for i in pos]
            group_rows[name]["class_average"].update(_summary(fam, mod.combine_class_averaged(sel)))
            group_rows[name]["detection_average"].update(
                _summary(fam, mod.combine_det_averaged(sel))
            )
        combined = {
            "class_average": mod.combine_class_averaged(cats),
            "detection_average": mod.combine_det_averaged(cats),
            "class_average_present": mod.combine_class_averaged([cats[i] for i in present]),
        }
        for name, res in combined.items():
            averages[name].update(_summary(fam, res))
            if fam == "hota":
                # An average over no category is one NaN (as TrackEval's mean of nothing):
                # spread over the alphas so that every per-alpha entry has shape (19,).
                per_alpha[name].update({k: _per_alpha(res[k]) for k in _HOTA_ARRAYS})
        for entry, res in zip(per_cat, cats, strict=True):
            entry.update(_summary(fam, res))
        if fam == "hota":
            per_alpha["per_category"] = {
                k: np.array([c[k] for c in cats], dtype=np.float64).reshape(-1, 19)
                for k in _HOTA_ARRAYS
            }
    logger.info("tracking metrics: %d results, %d categories", kept.shape[0], len(per_cat))
    return TrackingResult(
        families=families, class_average=averages["class_average"],
        detection_average=averages["detection_average"],
        class_average_present=averages["class_average_present"], per_alpha=per_alpha,
        per_category=per_cat, alphas=hota.ALPHAS.copy(), score_threshold=score_threshold,
        num_results=int(kept.shape[0]), groups=group_rows,
    )  # fmt: skip


def dumps(result: TrackingResult) -> str:
    """``result.to_json()`` as a JSON string."""
    return json.dumps(result.to_json())


class TrackingMetric:
    """HOTA / CLEAR / Identity behind the metric seam (``metrics=("hota", "clear",
    "identity")``): one pass computes every family asked for, so the three names share one
    metric object (:meth:`merge`) and one result, ``EvalResult.metrics["tracking"]``.

    Args:
        families: the families to compute.
        score_threshold: results with a lower score are dropped first (not for the AP).
    """

    name = "tracking"

    def __init__(
        self, *, families: Sequence[str] = tuple(FAMILIES), score_threshold: float | None = None
    ) -> None:
        self.families = tuple(f for f in FAMILIES if f in families)
        self.score_threshold = score_threshold

    def merge(self, other: TrackingMetric) -> TrackingMetric:
        """One metric computing the families of both (the first one's threshold)."""
        families = (*self.families, *other.families)
        return TrackingMetric(families=families, score_threshold=self.score_threshold)

    def compute(self, ctx) -> TrackingResult:
        return tracking_metrics(
            ctx.gt, ctx.results, backend=ctx.backend, score_threshold=self.score_threshold,
            families=self.families, groups=ctx.groups,
        )  # fmt: skip

    def json_entries(self, value: TrackingResult) -> dict[str, Any]:
        return {"tracking": value.to_json()}

    def format_text(self, value: TrackingResult) -> str:
        return value.format_text().rstrip()


def hota_metric(**options: Any) -> TrackingMetric:
    """``metrics=("hota",)``."""
    return TrackingMetric(families=("hota",), **options)


def clear_metric(**options: Any) -> TrackingMetric:
    """``metrics=("clear",)``."""
    return TrackingMetric(families=("clear",), **options)


def identity_metric(**options: Any) -> TrackingMetric:
    """``metrics=("identity",)``."""
    return TrackingMetric(families=("identity",), **options)
