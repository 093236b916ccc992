"""Error analysis in the manner of TIVE (video TIDE): what each kind of mistake costs in AP50.

Every kept result that counts as a false positive at IoU 0.5 (area "all", occlusion "all",
maxDet 100, the official greedy matching) gets one label, and every not-ignored ground truth that
no result matched and no label can recover is *missed*. For each label an oracle fixes those
mistakes only, AP50 is recomputed exactly (the official accumulation on the fixed matching) and
the error's weight is the difference, ``dAP = AP50(fixed) - AP50``, a fraction like the stats.

Labels, checked in this order (TIVE's), with ``IoU`` the official track IoU against the
not-ignored ground truths of the result's video, any category:

1. ``background`` if the video has no such ground truth;
2. ``spatial`` / ``temporal`` if the best IoU with a ground truth of the result's category is in
   ``[0.1, 0.5)`` (that ground truth, the first in file order among equal IoUs, is the one it
   refers to): *temporal overlap* = frames where the per-frame mask IoU is > 0.1, over frames
   where either track has a non-empty mask; ``spatial`` if it is >= 0.7, else ``temporal``;
3. ``classification`` if the best IoU with a ground truth of another category is >= 0.5 (it
   refers to that one, the first among equal IoUs);
4. ``duplicate`` if the best IoU with a ground truth of its category is >= 0.5 (that ground truth
   was taken by a higher-scored result, or this one would have matched it);
5. ``background`` if every IoU is < 0.1;
6. ``both`` otherwise (wrong category and 0.1 <= IoU < 0.5).

Oracles (TIDE's ``fix``, applied to one label at a time, never cumulatively):

- ``classification`` / ``spatial`` / ``temporal``: among the results of these three labels that
  refer to a ground truth nobody matched, the highest-scored one (the first in file order among
  equal scores) becomes a true positive of that ground truth's category with its own score;
  every other result of the label being fixed is removed.
- ``duplicate`` / ``both`` / ``background``: those results are removed.
- ``missed``: those ground truths are removed (fewer positives in their categories).
- ``false_positive`` (TIDE's special error): every false positive is removed (TIDE re-scores
  them to 0, behind every true positive, which gives the same AP).
- ``false_negative`` (special): every unmatched not-ignored ground truth is removed.

Deviations from TIVE (and why):

- Matching and AP are the official ones (this package's exact evaluator), not TIDE's own: the
  greedy matching walks each (video, category) with its tie rules and crowd / ignore handling,
  maxDet 100 applies per (video, category) (TIDE cuts 100 per video over all categories), and
  AP50 is the official 101-point precision mean over the categories with ground truth, equal
  bit for bit to ``evaluate(...).stats["AP50"]``. TIDE averages over every category that has a
  result or a ground truth, and ranks by score with its own tie order.
- Only results that count as false positives are labelled. Results matched to an ignored ground
  truth (a crowd) never enter the AP, so they are not errors here; TIVE labels them and its fix
  can even turn one into a true positive. Results beyond the 100 kept per (video, category) and
  results of categories absent from the ground truth are not evaluated, so not labelled.
- Ignored ground truths (crowds, and tracks outside the "all" ranges under custom parameters) are
  never referred to by a label, as TIDE treats its ignore regions.
- IoU boundaries follow the issue's half-open ranges: ``spatial`` / ``temporal`` need IoU < 0.5
  (TIVE tests <= 0.5, which labels a duplicate whose IoU is exactly 0.5 as spatial) and
  ``background`` needs IoU < 0.1 (TIVE tests <= 0.1, calling a wrong-category IoU of exactly 0.1
  background rather than both).
- A frame "has a mask" when its mask has at least one pixel, for both tracks (TIVE counts a
  ground-truth frame that is present but empty). Per-frame IoUs are exact integer counts divided
  in float64, as pycocotools does.
- dAP is not clamped at 0 (TIDE clamps the main errors): every oracle only removes false
  positives, turns them into true positives or removes missed ground truths, which never lowers
  the official AP, so a negative value would be a bug.
- A category that has ground truth before a fix but none after it (``missed``,
  ``false_negative``) keeps AP 0 in the mean if it still has counted results and leaves the mean
  if it has none, as TIDE's AP does; the official evaluator would leave it out in both cases.
  If no category is left at all (TIDE divides by zero), that fix's dAP is 0.
"""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple

import numpy as np

from ovis_jax._src.backends.base import Backend, get_backend
from ovis_jax._src.backends.grouping import Groups, group_tracks, gt_ignore_flags, range_flags
from ovis_jax._src.io.model import GroundTruth, Results
from ovis_jax._src.params import EvalParams

__all__ = [
    "ERROR_TYPES",
    "MAIN_ERRORS",
    "SPECIAL_ERRORS",
    "ErrorAnalysis",
    "analyze_errors",
    "format_errors",
]

#: The main error types, in TIVE's order.
MAIN_ERRORS: tuple[str, ...] = (
    "classification",
    "duplicate",
    "spatial",
    "temporal",
    "both",
    "background",
    "missed",
)
#: TIDE's special errors.
SPECIAL_ERRORS: tuple[str, ...] = ("false_positive", "false_negative")
ERROR_TYPES: tuple[str, ...] = MAIN_ERRORS + SPECIAL_ERRORS

FG_IOU = 0.5  # foreground: a match
BG_IOU = 0.1  # background: below it, a result overlaps nothing
FRAME_IOU = 0.1  # a frame counts towards the temporal overlap above this per-frame IoU
TEMPORAL_OVERLAP = 0.7  # spatial at or above it, temporal below
MAX_DET = 100
EPS = float(np.spacing(1))

# Integer labels of the kept results.
_TP, _IGNORED, _BKG, _LOC, _CLS, _DUPE, _BOTH = range(7)
_SPAT, _TEMP = 7, 8
_LABEL_NAMES = {
    _BKG: "background",
    _CLS: "classification",
    _DUPE: "duplicate",
    _BOTH: "both",
    _SPAT: "spatial",
    _TEMP: "temporal",
}


@dataclasses.dataclass(frozen=True)
class ErrorAnalysis:
    """TIVE-style error analysis of a result file.

    Attributes:
        ap50: the uncorrected AP50 (equal to ``evaluate(gt, results).stats["AP50"]``).
        errors: dAP per error type, in :data:`ERROR_TYPES` order: AP50 after fixing that type
            with its oracle minus ``ap50``.
        counts: how many results (or, for ``missed`` and ``false_negative``, ground truths)
            got each label.
    """

    ap50: float
    errors: dict[str, float]
    counts: dict[str, int]

    def to_json(self) -> dict[str, Any]:
        """Plain ``{"AP50": float, "errors": {type: dAP}, "counts": {type: int}}``."""
        return {
            "AP50": float(self.ap50),
            "errors": {k: float(v) for k, v in self.errors.items()},
            "counts": {k: int(v) for k, v in self.counts.items()},
        }


def format_errors(analysis: ErrorAnalysis) -> str:
    """A small text table: each error type's dAP (fraction of AP50) and count."""
    lines = [
        f"Errors (TIVE-style, dAP on AP50 = {analysis.ap50:.4f})",
        f"  {'type':<16}{'dAP':>8}{'count':>8}",
    ]
    for name in ERROR_TYPES:
        if name == SPECIAL_ERRORS[0]:
            lines.append("  " + "-" * 32)
        lines.append(f"  {name:<16}{analysis.errors[name]:>8.4f}{analysis.counts[name]:>8d}")
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# IoUs: per video, every kept result against every ground truth (any category)


class _Video(NamedTuple):
    rows: np.ndarray  # int64[Dv] kept-result positions (into the kept arrays)
    cols: np.ndarray  # int64[Gv] ground-truth tracks, file order
    ious: np.ndarray  # float64[Dv, Gv]


def _video_members(n_videos: int, kept_video: np.ndarray, gt_video: np.ndarray):
    """Per video position, the kept-result positions and the ground-truth tracks (file order)."""
    rows = np.argsort(kept_video, kind="stable")
    cols = np.argsort(gt_video, kind="stable")
    r_start = np.searchsorted(kept_video[rows], np.arange(n_videos + 1))
    c_start = np.searchsorted(gt_video[cols], np.arange(n_videos + 1))
    return rows, r_start, cols, c_start


def _video_groups(d_track, rows, r_start, cols, c_start) -> Groups:
    """One group per video: every kept result (``rows``) against every ground truth (``cols``)."""
    nd, ng = np.diff(r_start), np.diff(c_start)
    pair_start = np.zeros(nd.shape[0] + 1, dtype=np.int64)
    np.cumsum(nd * ng, out=pair_start[1:])
    return Groups(
        key=np.arange(nd.shape[0], dtype=np.int64),
        d_track=d_track[rows],
        d_rank=np.zeros(rows.shape[0], dtype=np.int64),
        d_start=r_start.astype(np.int64),
        g_track=cols.astype(np.int64),
        g_start=c_start.astype(np.int64),
        pair_start=pair_start,
    )


def _videos(gt: GroundTruth, results: Results, kept, backend: Backend) -> list[_Video]:
    """Per video position, its kept results × ground truths IoU matrix."""
    n_videos = len(gt.videos)
    rows, r_start, cols, c_start = _video_members(n_videos, kept.video, kept.gt_video)
    groups = _video_groups(kept.track, rows, r_start, cols, c_start)
    flat, pair_start = backend.pair_ious(gt, results, groups), groups.pair_start
    out = []
    for v in range(n_videos):
        r = rows[r_start[v] : r_start[v + 1]]
        c = cols[c_start[v] : c_start[v + 1]]
        m = flat[pair_start[v] : pair_start[v + 1]].reshape(r.shape[0], c.shape[0])
        out.append(_Video(r, c, m))
    return out


# --------------------------------------------------------------------------------------------
# Per-frame IoUs: temporal overlap of (result, ground truth) pairs


def _temporal_overlap(results, gt, d, g, backend: Backend) -> np.ndarray:
    """float64[pairs]: frames with per-frame IoU > 0.1 over frames where either has a mask."""
    if d.shape[0] == 0:
        return np.zeros(0)
    ious, either, start = backend.frame_ious(gt, results, d, g)
    good = _segment_sums((ious > FRAME_IOU).astype(np.int64), start)
    union = _segment_sums(either.astype(np.int64), start)
    return np.divide(good, union, out=np.zeros(good.shape[0]), where=union > 0)


def _segment_sums(values: np.ndarray, start: np.ndarray) -> np.ndarray:
    csum = np.zeros(values.shape[0] + 1, dtype=np.int64)
    np.cumsum(values, out=csum[1:])
    return csum[start[1:]] - csum[start[:-1]]


# --------------------------------------------------------------------------------------------
# Matching at IoU 0.5 (area "all", occlusion "all", maxDet 100)


class _Kept(NamedTuple):
    """The kept results (the first 100 by score of each (video, category)), group after group,
    in score order; and per ground-truth track its category, video and flags."""

    track: np.ndarray  # int64[D] result index (file order)
    cat: np.ndarray  # int64[D] category index
    video: np.ndarray  # int64[D] video position
    score: np.ndarray  # float64[D]
    area_out: np.ndarray  # bool[D] outside the "all" area range (ignored when unmatched)
    gt_cat: np.ndarray  # int64[G]
    gt_video: np.ndarray  # int64[G]
    gt_ignore: np.ndarray  # bool[G] ignored in the "all" ranges (crowds, at least)
    gt_crowd: np.ndarray  # bool[G]


def _cuts(params: EvalParams) -> tuple[int, int, float]:
    """The area and occlusion range indices and the IoU threshold of AP50."""
    areas = [a[0] for a in params.area_ranges]
    occs = [o[0] for o in params.occlusion_ranges]
    if "all" not in areas or "all" not in occs or FG_IOU not in params.iou_thresholds:
        raise ValueError("error analysis needs the 'all' area and occlusion ranges and IoU 0.5")
    return areas.index("all"), occs.index("all"), FG_IOU


def _kept(gt: GroundTruth, results: Results, params: EvalParams) -> _Kept:
    a, o, _ = _cuts(params)
    groups = group_tracks(gt, results.video_id, results.category_id, results.score, max_det=MAX_DET)
    n_k = max(gt.category_ids.shape[0], 1)
    key = groups.key[groups.d_group]
    video_ids = np.asarray([v.id for v in gt.videos], dtype=np.int64)
    track = groups.d_track
    area_out = range_flags(results.avg_area[track], params.area_bounds())[:, a]
    return _Kept(
        track=track,
        cat=key % n_k,
        video=key // n_k,
        score=results.score[track],
        area_out=area_out,
        gt_cat=np.searchsorted(gt.category_ids, gt.category_id).astype(np.int64),
        gt_video=np.searchsorted(video_ids, gt.video_id).astype(np.int64),
        gt_ignore=gt_ignore_flags(gt, params)[:, a, o],
        gt_crowd=np.asarray(gt.iscrowd, dtype=bool),
    )


def _match(videos: list[_Video], kept: _Kept, backend: Backend) -> np.ndarray:
    """int64[D] the ground-truth track each kept result is matched to at IoU 0.5, -1 if none."""
    greedy = backend.greedy
    matched = np.full(kept.track.shape[0], -1, dtype=np.int64)
    for vid in videos:
        if vid.rows.size == 0 or vid.cols.size == 0:
            continue
        r_cat, c_cat = kept.cat[vid.rows], kept.gt_cat[vid.cols]
        for k in np.unique(r_cat):
            ri, ci = np.flatnonzero(r_cat == k), np.flatnonzero(c_cat == k)
            if ci.size == 0:
                continue
            g = vid.cols[ci]
            m = greedy(vid.ious[np.ix_(ri, ci)], kept.gt_ignore[g], kept.gt_crowd[g], FG_IOU)
            matched[vid.rows[ri[m >= 0]]] = g[m[m >= 0]]
    return matched


# --------------------------------------------------------------------------------------------
# Labels


def _label_video(vid: _Video, kept: _Kept, fp: np.ndarray, label, ref) -> None:
    """Labels the false positives of one video (TIVE's order of checks); spatial and temporal
    are left as ``_LOC`` for :func:`_split_loc`. Writes ``label`` and ``ref`` (the ground
    truth a label refers to) in place."""
    sel = np.flatnonzero(fp[vid.rows])
    if sel.size == 0:
        return
    rows = vid.rows[sel]
    cand = ~kept.gt_ignore[vid.cols]
    if not cand.any():
        label[rows] = _BKG
        return
    ious = vid.ious[sel]
    same = cand[None, :] & (kept.gt_cat[vid.cols][None, :] == kept.cat[rows][:, None])
    other = cand[None, :] & ~same
    s_iou = np.where(same, ious, -1.0)
    o_iou = np.where(other, ious, -1.0)
    best_same, best_other = s_iou.max(axis=1), o_iou.max(axis=1)
    best_all = np.where(cand[None, :], ious, -1.0).max(axis=1)
    loc = (best_same >= BG_IOU) & (best_same < FG_IOU)
    cls = ~loc & (best_other >= FG_IOU)
    dupe = ~loc & ~cls & (best_same >= FG_IOU)
    bkg = ~loc & ~cls & ~dupe & (best_all < BG_IOU)
    label[rows] = np.select([loc, cls, dupe, bkg], [_LOC, _CLS, _DUPE, _BKG], _BOTH)
    ref[rows] = np.where(
        loc, vid.cols[s_iou.argmax(axis=1)], np.where(cls, vid.cols[o_iou.argmax(axis=1)], -1)
    )


def _labels(videos, kept: _Kept, matched, results, gt, backend: Backend):
    """``(label, ref)``: int64[D] each kept result's label (``_TP``, ``_IGNORED`` or an error)
    and the ground-truth track it refers to (-1 if none)."""
    hit = matched >= 0
    counted = ~kept.area_out
    counted[hit] = ~kept.gt_ignore[matched[hit]]
    label = np.where(matched >= 0, _TP, _BKG)
    label[~counted] = _IGNORED
    ref = np.full(label.shape[0], -1, dtype=np.int64)
    fp = counted & (matched < 0)
    for vid in videos:
        _label_video(vid, kept, fp, label, ref)
    loc = np.flatnonzero(label == _LOC)
    overlap = _temporal_overlap(results, gt, kept.track[loc], ref[loc], backend)
    label[loc] = np.where(overlap >= TEMPORAL_OVERLAP, _SPAT, _TEMP)
    return label, ref


def _fixers(kept: _Kept, label, ref, gt_used) -> tuple[np.ndarray, np.ndarray]:
    """``(winner, usable)``: bool[D] the results a fix turns into true positives (per
    ground truth nobody matched, the highest-scored spatial / temporal / classification
    error referring to it, the first in file order among equal scores) and bool[G] the
    ground truths such an error refers to (not missed)."""
    idx = np.flatnonzero(np.isin(label, (_SPAT, _TEMP, _CLS)) & (ref >= 0))
    idx = idx[~gt_used[ref[idx]]]
    order = idx[np.lexsort((kept.track[idx], -kept.score[idx], ref[idx]))]
    first = np.ones(order.shape[0], dtype=bool)
    first[1:] = ref[order[1:]] != ref[order[:-1]]
    winner = np.zeros(label.shape[0], dtype=bool)
    winner[order[first]] = True
    usable = np.zeros(gt_used.shape[0], dtype=bool)
    usable[ref[idx]] = True
    return winner, usable


# --------------------------------------------------------------------------------------------
# AP50 of a (fixed) matching


class _Points(NamedTuple):
    """The results that enter the AP: category, score, video, file index, whether it counts
    (not ignored) and whether it is a true positive."""

    cat: np.ndarray
    score: np.ndarray
    video: np.ndarray
    track: np.ndarray
    counted: np.ndarray
    tp: np.ndarray

    def drop(self, remove: np.ndarray) -> _Points:
        return _Points(*(x[~remove] for x in self))


def _ap50(points: _Points, npig: np.ndarray, defined: np.ndarray, recall_thrs) -> float:
    """The official AP50 (metric step 11-12 at one threshold, one range, maxDet 100).

    Args:
        points: the results, any order (sorted here by category, score descending, video,
            file order: the official order).
        npig: int64[K] not-ignored ground truths per category.
        defined: bool[K] the categories averaged (those with ground truth before any fix); one
            whose ``npig`` is 0 counts as 0 if it has a counted result, else it is left out.
        recall_thrs: float64[R].

    Returns:
        The mean of the defined entries of precision [R, K] (in that memory order, as the
        summary takes it), -1 if none.
    """
    n_k, n_r = npig.shape[0], recall_thrs.shape[0]
    precision = np.full((n_r, n_k), -1.0)
    order = np.lexsort((points.track, points.video, -points.score, points.cat))
    cat, counted, tp = points.cat[order], points.counted[order], points.tp[order]
    bounds = np.searchsorted(cat, np.arange(n_k + 1))
    for k in np.flatnonzero(defined):
        c, t = counted[bounds[k] : bounds[k + 1]], tp[bounds[k] : bounds[k + 1]]
        if npig[k] == 0:
            if c.any():
                precision[:, k] = 0.0
            continue
        tp_cum = np.cumsum(c & t).astype(np.float64)
        fp_cum = np.cumsum(c & ~t).astype(np.float64)
        rc = tp_cum / npig[k]
        pr = tp_cum / (fp_cum + tp_cum + EPS)
        pr = np.maximum.accumulate(pr[::-1])[::-1]
        idx = np.searchsorted(rc, recall_thrs, side="left")
        padded = np.append(pr, 0.0)
        precision[:, k] = padded[np.minimum(idx, pr.shape[0])]
    values = precision[precision > -1]
    return float(np.mean(values)) if values.size else -1.0


# --------------------------------------------------------------------------------------------
# Oracles


def _fixed(name: str, points: _Points, npig, label, ref, winner, missed, unmatched, gt_cat):
    """``(points, npig)`` after fixing the errors of type ``name`` (TIDE's oracles)."""
    codes = {v: k for k, v in _LABEL_NAMES.items()}
    if name == "missed":
        return points, npig - np.bincount(gt_cat[missed], minlength=npig.shape[0])
    if name == "false_negative":
        return points, npig - np.bincount(gt_cat[unmatched], minlength=npig.shape[0])
    if name == "false_positive":
        return points.drop(label >= _BKG), npig
    sel = label == codes[name]
    if name in ("classification", "spatial", "temporal"):
        fix = sel & winner
        cat = points.cat.copy()
        cat[fix] = gt_cat[ref[fix]]
        fixed = points._replace(cat=cat, counted=points.counted | fix, tp=points.tp | fix)
        return fixed.drop(sel & ~winner), npig
    return points.drop(sel), npig


def analyze_errors(
    gt: GroundTruth,
    results: Results,
    *,
    params: EvalParams | None = None,
    backend: str = "cpu",
) -> ErrorAnalysis:
    """TIVE-style error analysis: each error type's dAP on AP50 (see the module docstring).

    Args:
        gt: validated ground truth.
        results: validated results for it.
        params: evaluation parameters (the official ones by default); the analysis uses the
            "all" area and occlusion ranges, IoU 0.5 and 100 results per (video, category).
        backend: how the IoUs are computed: ``"cpu"`` (numba kernels) or ``"reference"``
            (pycocotools); both give identical numbers. ``"auto"`` and ``"jax"`` mean
            ``"cpu"`` (this pass has no device kernels).

    Returns:
        The :class:`ErrorAnalysis`.

    Raises:
        ValueError: on an unknown backend, or parameters without the ranges above.
    """
    if backend not in ("auto", "cpu", "jax", "reference"):
        raise ValueError(
            f"unknown backend {backend!r}, expected 'auto', 'cpu', 'jax' or 'reference'"
        )
    backend = get_backend("reference" if backend == "reference" else "cpu")
    params = params or EvalParams()
    kept = _kept(gt, results, params)
    videos = _videos(gt, results, kept, backend)
    matched = _match(videos, kept, backend)
    label, ref = _labels(videos, kept, matched, results, gt, backend)
    gt_used = np.zeros(kept.gt_cat.shape[0], dtype=bool)
    gt_used[matched[matched >= 0]] = True
    winner, usable = _fixers(kept, label, ref, gt_used)
    unmatched = ~kept.gt_ignore & ~gt_used
    missed = unmatched & ~usable
    npig = np.bincount(kept.gt_cat[~kept.gt_ignore], minlength=gt.category_ids.shape[0])
    points = _Points(kept.cat, kept.score, kept.video, kept.track, label != _IGNORED, label == _TP)
    defined, rec = npig > 0, params.recall_array
    ap50 = _ap50(points, npig, defined, rec)
    errors: dict[str, float] = {}
    for name in ERROR_TYPES:
        p, n = _fixed(name, points, npig, label, ref, winner, missed, unmatched, kept.gt_cat)
        fixed = _ap50(p, n, defined, rec)
        errors[name] = fixed - ap50 if ap50 >= 0 and fixed >= 0 else 0.0
    counts = {name: int(np.count_nonzero(label == code)) for code, name in _LABEL_NAMES.items()}
    counts["missed"] = int(np.count_nonzero(missed))
    counts["false_positive"] = int(np.count_nonzero(label >= _BKG))
    counts["false_negative"] = int(np.count_nonzero(unmatched))
    return ErrorAnalysis(
        ap50=ap50, errors=errors, counts={name: counts[name] for name in ERROR_TYPES}
    )


class ErrorsMetric:
    """The error analysis behind the metric seam (``metrics=("errors",)``, ``--errors``)."""

    name = "errors"

    def compute(self, ctx) -> ErrorAnalysis:
        backend = "reference" if ctx.backend.name == "reference" else "cpu"
        return analyze_errors(ctx.gt, ctx.results, params=ctx.params, backend=backend)

    def json_entries(self, value: ErrorAnalysis) -> dict[str, Any]:
        doc = value.to_json()
        return {"errors": doc["errors"], "error_counts": doc["counts"]}

    def format_text(self, value: ErrorAnalysis) -> str:
        return format_errors(value)
