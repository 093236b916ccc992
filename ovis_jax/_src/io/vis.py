"""The OVIS / YouTube-VIS family of inputs (also LV-VIS, and the other YouTube-VIS-shaped
datasets): parsing and validating a ground truth here, a results file in
:mod:`ovis_jax._src.io.vis_results` (re-exported).

Everything is checked before anything is evaluated; a malformed input raises
:class:`~ovis_jax.FormatError` naming the item (its index in the file and its video id) and what
was expected. The caller's objects are never mutated.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import math
from collections import Counter
from collections.abc import Mapping
from typing import Any, NamedTuple

import numpy as np

from ovis_jax._src import progress
from ovis_jax._src.errors import FormatError
from ovis_jax._src.io.cocovid import COCOVID_HINT, is_cocovid
from ovis_jax._src.io.model import (
    DataFormat,
    GroundTruth,
    PathOrObject,
    Video,
)
from ovis_jax._src.io.read import TYPED_GT, gc_paused, read_source
from ovis_jax._src.io.segments import Collector, FastFile, collectors
from ovis_jax._src.io.validate import (
    MAX_FRAME_PIXELS,
    is_finite_number,
    is_id,
    is_int,
    item_video,
    length_error,
    mean_area,
    plain_areas,
    require,
    show,
    show_id,
)
from ovis_jax._src.io.vis_results import (  # the results half, re-exported
    UNKNOWN_VIDEO_HINT,
    ResultsContext,
    load_results,
    parse_result,
)
from ovis_jax._src.masks.rle import MaskTable
from ovis_jax._src.params import OCCLUSION_SCORES

__all__ = [
    "NO_ANNOTATIONS",
    "UNKNOWN_VIDEO_HINT",
    "ResultsContext",
    "fingerprint",
    "load_ground_truth",
    "load_results",
    "parse_result",
]


logger = logging.getLogger(__name__)


def _parse_videos(raw: Any, frames: Mapping[int, dict[int, int]]) -> tuple[Video, ...]:
    """The videos; a video without ``length`` (nor ``file_names``) takes it from its
    annotations' frame counts (``frames``: video id -> frame count -> first annotation)."""
    if not isinstance(raw, list):
        raise FormatError(f"ground truth: 'videos' must be a list, got {type(raw).__name__}")
    videos: dict[int, Video] = {}
    for i, v in enumerate(raw):
        where = f"videos[{i}]"
        vid = require(v, "id", where)
        if not is_id(vid):
            raise FormatError(f"{where}: 'id' must be an integer (64-bit), got {show(vid)}")
        where = f"videos[{i}] (video_id {show_id(vid)})"
        h = require(v, "height", where)
        w = require(v, "width", where)
        if not (is_int(h) and is_int(w) and h > 0 and w > 0):
            raise FormatError(f"{where}: 'height' and 'width' must be positive integers")
        if h * w > MAX_FRAME_PIXELS:
            raise FormatError(
                f"{where}: frames of {h} x {w} = {h * w} pixels are not supported (at most "
                f"2^31 - 1 = {MAX_FRAME_PIXELS} pixels per frame)"
            )
        if "length" in v:
            length = v["length"]
        elif isinstance(v.get("file_names"), list):
            length = len(v["file_names"])
        else:
            length = _length_from_annotations(frames.get(int(vid), {}), where)
        if not is_int(length) or length < 0:
            raise FormatError(
                f"{where}: 'length' must be a non-negative integer, got {show(length)}"
            )
        if int(vid) in videos:
            raise FormatError(f"{where}: duplicated video id {vid}")
        videos[int(vid)] = Video(int(vid), int(h), int(w), int(length))
    return tuple(videos[k] for k in sorted(videos))


def _length_from_annotations(counts: Mapping[int, int], where: str) -> int:
    """A video's length from its annotations' frame counts (as mmtracking's converter writes
    videos without ``length``; the official evaluator never reads it)."""
    if len(counts) == 1:
        return next(iter(counts))
    if not counts:
        raise FormatError(
            f"{where}: missing key 'length' (and no 'file_names' list), and no annotation of "
            "the video to take it from"
        )
    (n0, i0), (n1, i1) = sorted(counts.items(), key=lambda kv: kv[1])[:2]
    raise FormatError(
        f"{where}: missing key 'length' (and no 'file_names' list), and its annotations "
        f"disagree on the number of frames (annotations[{i0}] has {n0} segmentations, "
        f"annotations[{i1}] has {n1})"
    )


def _frame_counts(raw_videos: Any, anns: list, fast: Any) -> dict[int, dict[int, int]]:
    """Per video id, each number of frames its annotations have (-> the first annotation
    with it); computed only when some video lacks both ``length`` and ``file_names``."""
    if not isinstance(raw_videos, list) or all(
        not isinstance(v, Mapping) or "length" in v or isinstance(v.get("file_names"), list)
        for v in raw_videos
    ):
        return {}
    counts: dict[int, dict[int, int]] = {}
    for i, a in enumerate(anns):
        vid, segs = a.get("video_id"), a.get("segmentations")
        n = fast.segments.num_frames(segs) if isinstance(fast, FastFile) else None
        if n is None and isinstance(segs, list):
            n = len(segs)
        if is_int(vid) and n is not None:
            counts.setdefault(int(vid), {}).setdefault(n, i)
    return counts


def _parse_categories(raw: Any) -> tuple[np.ndarray, tuple[str, ...], np.ndarray]:
    """Category ids (ascending), names, and LV-VIS ``partition`` labels (-1 where absent)."""
    if not isinstance(raw, list):
        raise FormatError(f"ground truth: 'categories' must be a list, got {type(raw).__name__}")
    cats: dict[int, tuple[str, int]] = {}
    for i, c in enumerate(raw):
        cid = require(c, "id", f"categories[{i}]")
        if not is_id(cid):
            raise FormatError(f"categories[{i}]: 'id' must be an integer (64-bit), got {show(cid)}")
        if int(cid) in cats:
            raise FormatError(f"categories[{i}]: duplicated category id {cid}")
        name = c.get("name", cid)
        part = c.get("partition", -1)
        if part is None:
            part = -1
        if not is_int(part):
            raise FormatError(
                f"categories[{i}] (category_id {cid}): 'partition' must be an integer, "
                f"got {show(part)}"
            )
        cats[int(cid)] = (name if isinstance(name, str) else show_id(name), int(part))
    ids = sorted(cats)
    names = tuple(cats[k][0] for k in ids)
    partition = np.asarray([cats[k][1] for k in ids], dtype=np.int64)
    return np.asarray(ids, dtype=np.int64), names, partition


def _valid_labels(occ: list) -> bool:
    """Whether every entry is null or a known occlusion label (a fast check of the common case)."""
    try:
        return set(occ) <= _OCCLUSION_ENTRIES
    except TypeError:  # an unhashable entry
        return False


_OCCLUSION_ENTRIES = frozenset([None, *OCCLUSION_SCORES])


def _occlusion_score(occ: list, where: str) -> float | None:
    if _valid_labels(occ):
        values = sorted(OCCLUSION_SCORES[o] for o in occ if o is not None)
        if not values:
            return None
        return float(np.mean(np.asarray(values[len(values) // 2 :], dtype=np.float64)))
    values = []
    for t, o in enumerate(occ):
        if o is None:
            continue
        if not isinstance(o, str) or o not in OCCLUSION_SCORES:
            raise FormatError(
                f"{where}, frame {t}: occlusion {show(o)} is not one of "
                f"{sorted(OCCLUSION_SCORES)} or null"
            )
        values.append(OCCLUSION_SCORES[o])
    if not values:
        return None
    values.sort()
    return float(np.mean(np.asarray(values[len(values) // 2 :], dtype=np.float64)))


class _Annotation(NamedTuple):
    """One kept ground-truth annotation, as :func:`_parse_annotation` reads it."""

    id: int
    video_id: int
    category_id: int
    iscrowd: bool
    avg_area: float  # NaN: no 'areas' in the file (computed from the masks later)
    occ_score: float | None  # None: no occlusion label in any frame


@dataclasses.dataclass
class _GtContext:
    """What the per-annotation parser needs and what it tallies across annotations."""

    video_by_id: dict[int, Video]
    known_cats: set[int]
    is_ovis: bool
    collector: Collector
    discarded: Collector
    seen_ids: dict[int, int] = dataclasses.field(default_factory=dict)
    unknown_cat: int = 0
    no_iscrowd: int = 0


NO_ANNOTATIONS = (
    "the ground truth has no 'annotations' (a validation or test split, scored by the "
    "evaluation server?): it cannot score results; to check a results file against it, run "
    "python -m ovis_jax.check --gt GT.json --results RESULTS.json"
)


def _gt_object(data: Any, *, require_annotations: bool) -> tuple[Any, Any, list]:
    """The ground truth's (videos, categories, annotations); annotations ``[]`` when absent or
    null and not required."""
    if isinstance(data, list) and any(isinstance(a, Mapping) and "score" in a for a in data[:100]):
        raise FormatError(
            "ground truth: this is a results file (a JSON list of predictions with 'score'), "
            "not a ground truth: are the ground truth and the results swapped?"
        )
    if is_cocovid(data):
        raise FormatError(COCOVID_HINT)
    if not isinstance(data, Mapping):
        raise FormatError(
            f"ground truth: expected a JSON object with 'videos', 'annotations' and "
            f"'categories', got {type(data).__name__}"
        )
    for key in ("videos", "categories"):
        if key not in data:
            raise FormatError(f"ground truth: missing top-level key {key!r}")
    anns = data.get("annotations")
    if anns is None:
        if require_annotations:
            raise FormatError(NO_ANNOTATIONS)
        anns = []
    if not isinstance(anns, list):
        raise FormatError(f"ground truth: 'annotations' must be a list, got {type(anns).__name__}")
    for i, a in enumerate(anns):
        if not isinstance(a, Mapping):
            raise FormatError(f"annotations[{i}]: expected a JSON object, got {type(a).__name__}")
    return data["videos"], data["categories"], anns


def _is_ovis_format(anns: list) -> bool:
    """Whether the annotations carry occlusion labels (all of them, or none)."""
    has_occ = ["occlusion" in a for a in anns]
    if any(has_occ) and not all(has_occ):
        i = has_occ.index(False)
        raise FormatError(
            f"annotations[{i}] (video_id {show_id(anns[i].get('video_id'))}): missing key "
            "'occlusion' (other annotations have occlusion labels)"
        )
    return bool(anns) and all(has_occ)


def _annotation_areas(a: Mapping, video: Video, where: str) -> float:
    """The track's ``avg_area`` from its ``areas`` list (NaN when it has none)."""
    areas = a.get("areas")
    if areas is None:
        return math.nan
    if not isinstance(areas, list) or len(areas) != video.length:
        n = len(areas) if isinstance(areas, list) else type(areas).__name__
        raise length_error(where, "areas", n, video)
    for t, ar in enumerate(areas if not plain_areas(areas) else ()):
        if ar is not None and not (is_finite_number(ar) and ar >= 0):
            raise FormatError(
                f"{where}, frame {t}: area must be a non-negative number or null, got {show(ar)}"
            )
    return mean_area(areas)


def _parse_annotation(i: int, a: Mapping, ctx: _GtContext) -> _Annotation | None:
    """Validates ``annotations[i]`` and adds its masks to the context's collector.

    Returns:
        The annotation, or None when its category is not in 'categories' (then its masks are
        validated all the same, and counted).
    """
    where, video = item_video(a, f"annotations[{i}]", ctx.video_by_id, "not in 'videos'")
    vid = video.id
    aid = require(a, "id", where)
    if not is_id(aid):
        raise FormatError(f"{where}: 'id' must be an integer (64-bit), got {show(aid)}")
    if int(aid) in ctx.seen_ids:
        raise FormatError(
            f"{where}: duplicated annotation id {aid} (also annotations[{ctx.seen_ids[int(aid)]}])"
        )
    ctx.seen_ids[int(aid)] = i
    cid = require(a, "category_id", where)
    if not is_id(cid):
        raise FormatError(f"{where}: 'category_id' must be an integer (64-bit), got {show(cid)}")
    segs = require(a, "segmentations", where)
    if "iscrowd" not in a:
        ctx.no_iscrowd += 1
    iscrowd = a.get("iscrowd", 0)
    if iscrowd not in (0, 1, True, False):
        raise FormatError(f"{where}: 'iscrowd' must be 0 or 1, got {show(iscrowd)}")
    if int(cid) not in ctx.known_cats:
        ctx.unknown_cat += 1
        # Validated all the same: a malformed file is malformed wherever the error is.
        ctx.discarded.add_track(segs, video, where)
        return None
    ctx.collector.add_track(segs, video, where)
    avg_area = _annotation_areas(a, video, where)
    occ_score: float | None = 0.0
    if ctx.is_ovis:
        occ = a["occlusion"]
        if isinstance(occ, str):
            raise FormatError(
                f"{where}: 'occlusion' must be a list of per-frame labels (one per frame, e.g. "
                f'["no_occlusion", null, ...]), got the string {show(occ)}'
            )
        if not isinstance(occ, list) or len(occ) != video.length:
            n = len(occ) if isinstance(occ, list) else type(occ).__name__
            raise length_error(where, "occlusion", n, video)
        occ_score = _occlusion_score(occ, where)
    return _Annotation(int(aid), int(vid), int(cid), bool(iscrowd), avg_area, occ_score)


def _fill_missing_areas(avg: np.ndarray, masks: MaskTable) -> int:
    """Replaces the NaN entries of ``avg`` (tracks without 'areas') by the masks' average
    areas, in place; returns how many there were."""
    missing = np.flatnonzero(np.isnan(avg))
    for g in missing.tolist():
        f0, f1 = masks.frame_start[g], masks.frame_start[g + 1]
        avg[g] = mean_area(masks.area[f0:f1].tolist())
    return int(missing.size)


def _gt_warnings(
    *,
    has_annotations: bool,
    num_anns: int,
    missing_areas: int,
    unknown_cat: int,
    no_occ: int,
    no_iscrowd: int,
    shared_names: tuple[str, ...],
) -> list[str]:
    """The user-facing warnings of a ground-truth file, in a fixed order."""
    warnings = []
    if has_annotations and not num_anns:
        warnings.append(
            "the ground truth has no annotations: every number is -1 (undefined), and without "
            "occlusion labels the YouTube-VIS summary (12 numbers) is printed"
        )
    if missing_areas:
        warnings.append(
            f"{missing_areas} ground-truth track(s) have no 'areas': their areas were "
            "computed from the masks"
        )
    if unknown_cat:
        warnings.append(
            f"{unknown_cat} ground-truth annotation(s) have a category_id not in 'categories' "
            "and are not evaluated"
        )
    if no_occ:
        warnings.append(
            f"{no_occ} ground-truth track(s) have no occlusion label in any frame: their "
            "occlusion score is 0.0 (the official evaluator divides by zero here)"
        )
    if no_iscrowd:
        warnings.append(
            f"{no_iscrowd} ground-truth annotation(s) have no 'iscrowd': taken as 0 (not a "
            "crowd; the official evaluator raises KeyError here)"
        )
    if shared_names:
        warnings.append(
            f"categories share the name(s) {list(shared_names)}: every table keys categories "
            "by id (TrackEval keys them by name and would keep only one)"
        )
    return warnings


def fingerprint(videos: tuple[Video, ...], cat_ids: np.ndarray, ann_ids: list, fmt: str) -> str:
    text = json.dumps(
        {
            "videos": [[v.id, v.height, v.width, v.length] for v in videos],
            "categories": cat_ids.tolist(),
            "annotations": ann_ids,
            "format": fmt,
        },
        separators=(",", ":"),
    )
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@gc_paused
def load_ground_truth(
    source: PathOrObject, *, require_annotations: bool = True, max_bytes: int | None = None
) -> GroundTruth:
    """Loads and validates a ground-truth file.

    Args:
        source: a path to the JSON file (also ``.json.gz`` or a zip holding one JSON file), or
            the already-parsed object (not modified).
        require_annotations: if False, a file without ``annotations`` (or with
            ``"annotations": null``, as the validation splits ship) loads with no tracks and
            ``has_annotations`` False; if True (default) it is an error, since nothing could
            be scored against it.
        max_bytes: the cap on the file's size once decompressed (None: 16 GiB, or
            ``OVIS_JAX_MAX_INPUT_BYTES``; see :func:`ovis_jax._src.io.read.read_bytes`).

    Returns:
        The validated :class:`GroundTruth`; the format (OVIS or YouTube-VIS) is detected from
        the presence of ``occlusion`` labels.

    Raises:
        FormatError: naming the offending item and what was expected.
    """
    data = fast = read_source(source, "ground truth", TYPED_GT, max_bytes=max_bytes)
    progress.stage(logger, "validate")
    if isinstance(data, FastFile):
        t = fast.typed
        data = {"videos": t.videos, "categories": t.categories, "annotations": fast.items}
    raw_videos, raw_cats, anns = _gt_object(data, require_annotations=require_annotations)
    has_annotations = isinstance(data, Mapping) and data.get("annotations") is not None
    videos = _parse_videos(raw_videos, _frame_counts(raw_videos, anns, fast))
    cat_ids, cat_names, partition = _parse_categories(raw_cats)
    collector, discarded = collectors(fast)
    ctx = _GtContext(
        video_by_id={v.id: v for v in videos},
        known_cats=set(cat_ids.tolist()),
        is_ovis=_is_ovis_format(anns),
        collector=collector,
        discarded=discarded,
    )
    rows = [r for i, a in enumerate(anns) if (r := _parse_annotation(i, a, ctx)) is not None]
    masks = collector.build()
    discarded.build()
    avg = np.asarray([r.avg_area for r in rows], dtype=np.float64)
    fmt = DataFormat.OVIS if ctx.is_ovis else DataFormat.YTVIS
    warnings = _gt_warnings(
        has_annotations=has_annotations,
        num_anns=len(anns),
        missing_areas=_fill_missing_areas(avg, masks),
        unknown_cat=ctx.unknown_cat,
        no_occ=sum(r.occ_score is None for r in rows),
        no_iscrowd=ctx.no_iscrowd,
        shared_names=tuple(sorted(n for n, k in Counter(cat_names).items() if k > 1)),
    )
    for w in warnings:
        logger.debug("warning: %s", w)  # returned in .warnings: one channel
    return GroundTruth(
        format=fmt,
        videos=videos,
        category_ids=cat_ids,
        category_names=cat_names,
        ann_id=np.asarray([r.id for r in rows], dtype=np.int64),
        video_id=np.asarray([r.video_id for r in rows], dtype=np.int64),
        category_id=np.asarray([r.category_id for r in rows], dtype=np.int64),
        iscrowd=np.asarray([r.iscrowd for r in rows], dtype=bool),
        avg_area=avg,
        occ_score=np.asarray([r.occ_score or 0.0 for r in rows], dtype=np.float64),
        masks=masks,
        rles=masks.rles(),
        warnings=tuple(warnings),
        fingerprint=fingerprint(videos, cat_ids, [r.id for r in rows], fmt),
        category_partition=partition,
        has_annotations=has_annotations,
    )
